package cli

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/rootuip/sre/pkg/testutil"
)

func TestEscalationSimulateAndOncall(t *testing.T) {
	cfg := filepath.Join(testutil.RepoRoot(t), "examples", "sred.yml")
	var out, errb bytes.Buffer
	code := Main([]string{"escalation", "simulate", "--config.file", cfg, "-l", "service=api", "-l", "severity=low", "--at", "2026-03-10T08:00:00Z"}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	require.Equal(t, `Policy "api", severity LOW, triggered 2026-03-10T08:00:00Z
AT                    AFTER     LEVEL         USERS       CHANNELS      NOTES
2026-03-10 08:00 UTC  +0s       0             bob         email, slack  
2026-03-10 09:00 UTC  +1h0m0s   1             dan         email, slack  
2026-03-10 09:15 UTC  +1h15m0s  2             tara        email, slack  
2026-03-10 09:45 UTC  +1h45m0s  3             mia, chris  email, slack  
2026-03-10 10:45 UTC  +2h45m0s  0 (repeat 1)  bob         email, slack  
2026-03-10 11:45 UTC  +3h45m0s  1 (repeat 1)  dan         email, slack  
2026-03-10 12:00 UTC  +4h0m0s   2 (repeat 1)  tara        email, slack  
2026-03-10 12:30 UTC  +4h30m0s  3 (repeat 1)  mia, chris  email, slack  
`, out.String())

	out.Reset()
	code = Main([]string{"oncall", "--config.file", cfg, "--service", "api", "--at", "2026-03-29T12:00:00Z"}, &out, &errb)
	require.Equal(t, 0, code, errb.String())
	require.Equal(t, `SCHEDULE       SERVICE  ROLE     ON CALL
api-primary    api      primary  dan
api-secondary  api      backup   bob
`, out.String())

	errb.Reset()
	code = Main([]string{"oncall", "--config.file", cfg, "--service", "web"}, &out, &errb)
	require.Equal(t, 1, code)
	require.Equal(t, "srectl: unknown service \"web\"\n", errb.String())
	require.True(t, strings.HasPrefix(errb.String(), "srectl:"))
}
