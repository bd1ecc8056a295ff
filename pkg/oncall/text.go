package oncall

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteText writes who is on call (srectl oncall): a table of the entries,
// then the shifts of each entry that has some, their times in the
// schedule's zone (TimeText).
func WriteText(w io.Writer, entries []OnCallEntry) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SCHEDULE\tSERVICE\tROLE\tON CALL")
	for _, e := range entries {
		u := e.User
		if u == "" {
			u = "(nobody: coverage gap)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.Schedule, orDash(e.Service), orDash(e.Role), u)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, e := range entries {
		if len(e.Shifts) == 0 {
			continue
		}
		loc := zoneOf(e.TimeZone)
		if loc != nil {
			fmt.Fprintf(w, "\n%s (%s):\n", e.Schedule, loc)
		} else {
			fmt.Fprintf(w, "\n%s:\n", e.Schedule)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "START\tEND\tON CALL\tLAYER")
		for _, s := range e.Shifts {
			u := s.User
			if u == "" {
				u = "(gap)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", TimeText(s.Start, loc), TimeText(s.End, loc), u, orDash(s.Layer))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// TimeText is t in loc (t's own zone when nil) with its offset and the
// zone's abbreviation: "2026-03-28 09:00 +01:00 CET". A zone without an
// abbreviation (Go names it by its offset, "-03") shows the offset alone,
// and so does a time decoded from RFC 3339, which carries no zone name.
func TimeText(t time.Time, loc *time.Location) string {
	if loc != nil {
		t = t.In(loc)
	}
	s := t.Format("2006-01-02 15:04 -07:00")
	if name, _ := t.Zone(); name != "" && !strings.HasPrefix(name, "+") && !strings.HasPrefix(name, "-") {
		s += " " + name
	}
	return s
}

// zoneOf loads a schedule's zone (nil when empty or unknown here).
func zoneOf(name string) *time.Location {
	if name == "" {
		return nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil
	}
	return loc
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
