package console

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// SortOrders are the values of a result's sort parameter (see SortItems);
// an empty sort is the default order.
var SortOrders = []string{"name", "namespace", "kind", "status", "node", "restarts", "age", "-age"}

// resultParams are the query parameters of a search or list besides q.
type resultParams struct {
	sort      string
	labelCols []string
	limit     int
	csv       bool
}

// parseResultParams reads sort, labelcols, limit and format. A value the
// console does not know is an error wrapping errBadRequest that names the
// parameter, the value and what is accepted, rather than being ignored.
func parseResultParams(r *http.Request) (resultParams, error) {
	p := resultParams{sort: r.FormValue("sort"), labelCols: splitValues(r.FormValue("labelcols")), limit: defaultLimit}
	if p.sort != "" && !slices.Contains(SortOrders, p.sort) {
		return p, fmt.Errorf("parameter sort: %q is not one of %s: %w", p.sort, strings.Join(SortOrders, ", "), errBadRequest)
	}
	for _, key := range p.labelCols {
		if len(validation.IsQualifiedName(key)) > 0 {
			return p, fmt.Errorf("parameter labelcols: %q is not a label key; give label keys such as app or app.kubernetes.io/name, separated by commas: %w", key, errBadRequest)
		}
	}
	if v := r.FormValue("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return p, fmt.Errorf("parameter limit: %q is not a number >= 0 (0 for all): %w", v, errBadRequest)
		}
		p.limit = n
	}
	switch f := r.FormValue("format"); f {
	case "":
	case "csv":
		p.csv = true
	default:
		return p, fmt.Errorf("parameter format: %q is not csv, the one format besides the page and its JSON: %w", f, errBadRequest)
	}
	return p, nil
}
