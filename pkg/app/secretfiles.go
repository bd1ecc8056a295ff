package app

import (
	"github.com/rootuip/sre/pkg/config"
	"github.com/rootuip/sre/pkg/notify"
)

// notificationFiles are the secret files of the notifications section, for
// config.CheckFiles: a missing ack_secret_file or channel secret is an
// error at load (sred start, reload, `srectl check config`).
func notificationFiles(n *notify.Config) []config.FileRef {
	var refs []config.FileRef
	for _, f := range n.SecretFiles() {
		refs = append(refs, config.FileRef{Field: f.Field, Path: f.Path})
	}
	return refs
}
