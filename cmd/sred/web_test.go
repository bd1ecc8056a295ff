package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/exporter-toolkit/web"
	"github.com/stretchr/testify/require"
	yaml "go.yaml.in/yaml/v3"
	"golang.org/x/crypto/bcrypt"
)

// TestSplitWebConfig: basic_auth_users leave the file exporter-toolkit
// serves (sred checks them, so that the webhook's own token and the probes
// work), relative certificate paths become absolute, and a file without
// users is served as it is.
func TestSplitWebConfig(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := selfSigned(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	require.NoError(t, err)
	withUsers := filepath.Join(dir, "web.yml")
	require.NoError(t, os.WriteFile(withUsers, []byte("tls_server_config:\n  cert_file: "+filepath.Base(certFile)+
		"\n  key_file: "+filepath.Base(keyFile)+"\nbasic_auth_users:\n  alice: "+string(hash)+"\n"), 0o600))
	users, served, cleanup, err := splitWebConfig(withUsers)
	require.NoError(t, err)
	require.Equal(t, map[string]string{"alice": string(hash)}, users)
	require.NotEqual(t, withUsers, served)
	b, err := os.ReadFile(served)
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, yaml.Unmarshal(b, &got))
	require.Equal(t, map[string]any{"tls_server_config": map[string]any{"cert_file": certFile, "key_file": keyFile}}, got)
	cleanup()
	_, err = os.Stat(served)
	require.True(t, os.IsNotExist(err), "the served copy is removed")

	noUsers := filepath.Join(dir, "tls.yml")
	require.NoError(t, os.WriteFile(noUsers, []byte("tls_server_config:\n  cert_file: "+certFile+"\n  key_file: "+keyFile+"\n"), 0o600))
	users, served, _, err = splitWebConfig(noUsers)
	require.NoError(t, err)
	require.Nil(t, users)
	require.Equal(t, noUsers, served)

	bad := filepath.Join(dir, "bad.yml")
	require.NoError(t, os.WriteFile(bad, []byte("basic_auth_users:\n  alice: clear-text\n"), 0o600))
	_, _, _, err = splitWebConfig(bad)
	require.ErrorContains(t, err, "web config file "+bad+": ")
}

// TestSplitWebConfigMerges: the users and the certificate paths are found
// where a merge key or an alias brings them in, as exporter-toolkit reads
// them, and the copy it serves holds no alias or merge: its relative
// certificate paths are made absolute, it keeps no user, and it loads.
func TestSplitWebConfigMerges(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := selfSigned(t, dir)
	cert, key := filepath.Base(certFile), filepath.Base(keyFile)
	hash, err := bcrypt.GenerateFromPassword([]byte("pw"), bcrypt.MinCost)
	require.NoError(t, err)
	h := string(hash)
	tls := map[string]any{"cert_file": certFile, "key_file": keyFile}
	for _, tc := range []struct {
		name, doc string
		users     map[string]string
		served    map[string]any
	}{
		{"users and tls from a merge",
			"<<: {basic_auth_users: {alice: " + h + "}, tls_server_config: {cert_file: " + cert + ", key_file: " + key + "}}\n",
			map[string]string{"alice": h}, map[string]any{"tls_server_config": tls}},
		{"users from a list of merges, the first winning",
			"<<: [{basic_auth_users: {alice: " + h + "}}, {basic_auth_users: {bob: " + h + "}}]\n" +
				"tls_server_config: {cert_file: " + cert + ", key_file: " + key + "}\n",
			map[string]string{"alice": h}, map[string]any{"tls_server_config": tls}},
		{"users written win over merged ones, which are not served",
			"<<: {basic_auth_users: {bob: " + h + "}}\nbasic_auth_users: {alice: " + h + "}\n" +
				"tls_server_config: {cert_file: " + cert + ", key_file: " + key + "}\n",
			map[string]string{"alice": h}, map[string]any{"tls_server_config": tls}},
		{"certificate paths from a merge in tls_server_config",
			"tls_server_config: {<<: {cert_file: " + cert + ", key_file: " + key + "}, min_version: TLS12}\n" +
				"basic_auth_users: {alice: " + h + "}\n",
			map[string]string{"alice": h}, map[string]any{"tls_server_config": map[string]any{
				"cert_file": certFile, "key_file": keyFile, "min_version": "TLS12"}}},
		{"a certificate path by alias",
			"tls_server_config: {cert_file: &c " + cert + ", key_file: " + key + ", client_ca_file: *c, client_auth_type: RequireAndVerifyClientCert}\n" +
				"basic_auth_users: {alice: " + h + "}\n",
			map[string]string{"alice": h}, map[string]any{"tls_server_config": map[string]any{
				"cert_file": certFile, "key_file": keyFile, "client_ca_file": certFile,
				"client_auth_type": "RequireAndVerifyClientCert"}}},
		{"an alias of a hash in the users",
			"basic_auth_users: {alice: &h " + h + ", bob: *h}\n" +
				"tls_server_config: {cert_file: " + cert + ", key_file: " + key + "}\n",
			map[string]string{"alice": h, "bob": h}, map[string]any{"tls_server_config": tls}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, "web.yml")
			require.NoError(t, os.WriteFile(path, []byte(tc.doc), 0o600))
			users, served, cleanup, err := splitWebConfig(path)
			require.NoError(t, err)
			t.Cleanup(cleanup)
			require.Equal(t, tc.users, users)
			require.NotEqual(t, path, served)
			b, err := os.ReadFile(served)
			require.NoError(t, err)
			var got map[string]any
			require.NoError(t, yaml.Unmarshal(b, &got))
			require.Equal(t, tc.served, got, "served:\n%s", b)
			require.NoError(t, web.Validate(served), "served:\n%s", b)
		})
	}
}

// TestSplitWebConfigErrors: the web config file's errors read as sred.yml's
// (yamlerr): a syntax error at its line and column, an unknown field without
// exporter-toolkit's Go type, each at its file:line:col. Before, they read
// "yaml: line 2: did not find expected ',' or ']'", "field basic_auth_user
// not found in type web.Config" and "yaml: unmarshal errors: line 1: ...".
func TestSplitWebConfigErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct{ name, doc, want string }{
		{"syntax", "basic_auth_users:\n  rita: [unclosed\ntls_server_config: {}\n",
			`:2:9: invalid YAML: "[" opened here is not closed before line 3`},
		{"unknown field", "basic_auth_user:\n  rita: x\n",
			`:1:1: unknown field "basic_auth_user"`},
		{"wrong type", "basic_auth_users:\n  - rita\n",
			`:2:3: cannot use a list here: want a mapping`},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, "web.yml")
			require.NoError(t, os.WriteFile(path, []byte(c.doc), 0o600))
			_, _, _, err := splitWebConfig(path)
			require.EqualError(t, err, "web config file "+path+c.want)
		})
	}
}
