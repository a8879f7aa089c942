// Package observability checks Bosun's observability pack against the code:
// which metrics the components register (ScanMetrics), what
// docs/metrics.md documents (ParseMetricsDoc), which metrics a PromQL
// expression reads (MetricNames), and the alert rules the example fleet
// renders (RuleGroups). Its tests prove the rules with promtool, the
// dashboards' queries against the metrics that exist, and the document
// against the code (L09, L16, L18, L27, L50).
package observability

import (
	"fmt"
	"sort"
	"strings"
	"unicode"
)

// promqlWords are PromQL's keywords, aggregation operators and functions:
// identifiers that are never metric names. Functions are recognised by the
// "(" that follows them, so only words that may stand without one are
// listed here, with the grouping modifiers whose label lists are skipped.
var promqlWords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true,
	"by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true, "inf": true, "nan": true,
	"atan2": true,
	// Aggregation operators, which may be followed by "by (...)" before
	// their "(".
	"sum": true, "min": true, "max": true, "avg": true, "group": true,
	"stddev": true, "stdvar": true, "count": true, "count_values": true,
	"bottomk": true, "topk": true, "quantile": true, "limitk": true,
	"limit_ratio": true,
}

// labelListWords are followed by a parenthesised list of label names.
var labelListWords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true,
	"group_left": true, "group_right": true,
}

// MetricNames returns the metric names a PromQL expression reads, sorted
// and without duplicates. It understands enough of PromQL to tell metric
// names from functions, keywords, label names, label matchers, strings,
// durations and numbers; a selector by __name__ is reported as an error,
// since the name cannot be checked.
func MetricNames(expr string) ([]string, error) {
	seen := map[string]bool{}
	rs := []rune(expr)
	i := 0
	skipSpace := func(j int) int {
		for j < len(rs) && unicode.IsSpace(rs[j]) {
			j++
		}
		return j
	}
	for i < len(rs) {
		c := rs[i]
		switch {
		case c == '#': // comment to end of line
			for i < len(rs) && rs[i] != '\n' {
				i++
			}
		case c == '"' || c == '\'' || c == '`':
			j, err := skipString(rs, i)
			if err != nil {
				return nil, err
			}
			i = j
		case c == '{':
			j := i + 1
			for j < len(rs) && rs[j] != '}' {
				if rs[j] == '"' || rs[j] == '\'' || rs[j] == '`' {
					k, err := skipString(rs, j)
					if err != nil {
						return nil, err
					}
					j = k
					continue
				}
				j++
			}
			if j >= len(rs) {
				return nil, fmt.Errorf("unclosed { at offset %d", i)
			}
			if strings.Contains(string(rs[i:j]), "__name__") {
				return nil, fmt.Errorf("selector by __name__ at offset %d: name the metric instead", i)
			}
			i = j + 1
		case c == '[': // range or subquery duration
			j := i
			for j < len(rs) && rs[j] != ']' {
				j++
			}
			i = j + 1
		case unicode.IsDigit(c) || (c == '.' && i+1 < len(rs) && unicode.IsDigit(rs[i+1])):
			// Numbers, durations (5m), hex and exponents.
			for i < len(rs) && (unicode.IsLetter(rs[i]) || unicode.IsDigit(rs[i]) || rs[i] == '.' || rs[i] == '_' ||
				((rs[i] == '+' || rs[i] == '-') && (rs[i-1] == 'e' || rs[i-1] == 'E'))) {
				i++
			}
		case c == '_' || c == ':' || unicode.IsLetter(c):
			j := i
			for j < len(rs) && (rs[j] == '_' || rs[j] == ':' || unicode.IsLetter(rs[j]) || unicode.IsDigit(rs[j])) {
				j++
			}
			word := string(rs[i:j])
			next := skipSpace(j)
			lower := strings.ToLower(word)
			switch {
			case labelListWords[lower]:
				if next < len(rs) && rs[next] == '(' {
					k := next
					for k < len(rs) && rs[k] != ')' {
						k++
					}
					j = k + 1
				}
			case promqlWords[lower]:
			case next < len(rs) && rs[next] == '(':
				// A function or aggregation call.
			default:
				seen[word] = true
			}
			i = j
		default:
			i++
		}
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

func skipString(rs []rune, i int) (int, error) {
	q := rs[i]
	j := i + 1
	for j < len(rs) && rs[j] != q {
		if rs[j] == '\\' && q != '`' {
			j++
		}
		j++
	}
	if j >= len(rs) {
		return 0, fmt.Errorf("unclosed string at offset %d", i)
	}
	return j + 1, nil
}
