package engine

import (
	"sort"
	"strconv"
)

// jsonString returns s as a JSON string literal. Inputs were validated as
// UTF-8 without control characters by the server; any that slip through are
// escaped anyway, so stored metadata is always valid JSON.
func jsonString(s string) string {
	buf := make([]byte, 0, len(s)+2)
	buf = append(buf, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			buf = append(buf, '\\', c)
		case c < 0x20:
			buf = append(buf, `\u00`...)
			buf = append(buf, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&15])
		default:
			buf = append(buf, c)
		}
	}
	return string(append(buf, '"'))
}

// jsonInt returns n as a JSON number literal.
func jsonInt(n int64) string { return strconv.FormatInt(n, 10) }

func sortOrgRecords(s []OrgRecord) { sort.Slice(s, func(i, j int) bool { return s[i].ID < s[j].ID }) }
func sortKeys(s []APIKey)          { sort.Slice(s, func(i, j int) bool { return s[i].ID < s[j].ID }) }
