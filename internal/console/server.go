package console

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// defaultLimit caps the items shown per cluster in a result page; JSON and
// CSV take ?limit= (0 for all).
const defaultLimit = 500

// server serves the console's pages and JSON API.
type server struct {
	c     *Console
	pages map[string]*template.Template
}

// Handler returns the console's HTTP handler: HTML pages, the JSON API
// under /api/, CSV downloads, SVG charts and /metrics. With auth enabled,
// every request but /healthz needs a user.
func (c *Console) Handler(auth Auth) (http.Handler, error) {
	if err := auth.Validate(); err != nil {
		return nil, err
	}
	s := &server{c: c, pages: map[string]*template.Template{}}
	funcs := template.FuncMap{
		"age":     func(t time.Time) string { return age(c.clock.Now().Sub(t)) },
		"usd":     func(v float64) string { return fmt.Sprintf("$%.4f", v) },
		"monthly": func(v float64) string { return fmt.Sprintf("$%.2f", v*HoursPerMonth) },
		"pct":     func(v float64) string { return fmt.Sprintf("%.0f%%", v) },
		"cores":   func(v float64) string { return fmt.Sprintf("%.0fm", v*1000) },
		"mib":     func(v float64) string { return fmt.Sprintf("%.0fMi", v*1024) },
		"label":   func(it *Item, k string) string { return it.Labels[k] },
		"join":    strings.Join,
		"query":   url.QueryEscape,
		"path":    url.PathEscape,
		"since":   func(t time.Time) string { return sinceText(c.clock.Now(), t) },
		"until":   func(t time.Time) string { return "in " + age(t.Sub(c.clock.Now())) },
		"list":    func(s ...string) []string { return s },
		"withTotal": func(r CostReport) []ClusterCost {
			return append(append([]ClusterCost(nil), r.Clusters...), r.Total)
		},
	}
	for _, page := range []string{"results", "detail", "fleet", "cost", "rightsizing", "crds", "error"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("parsing template %s, %w", page, err)
		}
		s.pages[page] = t
	}
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("static assets, %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	for _, rt := range s.routes() {
		mux.HandleFunc(rt.pattern, rt.handler)
	}
	return auth.wrap(secureHeaders(mux)), nil
}

// route is one pattern of the console's mux and its handler.
type route struct {
	pattern string
	handler http.HandlerFunc
}

// routes lists every route the console serves but /static/ (embedded
// files): one table, so the security tests walk exactly what is served.
func (s *server) routes() []route {
	c := s.c
	rs := []route{
		{"GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }},
		{"GET /{$}", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/fleet", http.StatusFound) }},
		{"GET /search", s.search(false)},
		{"GET /api/search", s.search(true)},
	}
	for _, api := range []bool{false, true} {
		prefix := ""
		if api {
			prefix = "/api"
		}
		rs = append(rs,
			route{"GET " + prefix + "/clusters/{cluster}/namespaces/{namespace}/{kind}", s.list(api)},
			route{"GET " + prefix + "/clusters/{cluster}/{kind}", s.list(api)},
			route{"GET " + prefix + "/clusters/{cluster}/namespaces/{namespace}/{kind}/{name}", s.detail(api)},
			route{"GET " + prefix + "/clusters/{cluster}/{kind}/{name}", s.detail(api)},
			route{"GET " + prefix + "/clusters/{cluster}/crds", s.crds(api)},
			route{"GET " + prefix + "/clusters/{cluster}/custom/{group}/{version}/{plural}", s.customList(api)},
			route{"GET " + prefix + "/clusters/{cluster}/custom/{group}/{version}/{plural}/{name}", s.customDetail(api)},
		)
	}
	return append(rs,
		route{"GET /fleet", s.fleet(false)},
		route{"GET /api/fleet", s.fleet(true)},
		route{"GET /api/clusters", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, c.Clusters()) }},
		route{"GET /cost", s.cost(false)},
		route{"GET /api/cost", s.cost(true)},
		route{"GET /cost.csv", s.costCSV},
		route{"GET /rightsizing", s.rightSizing(false)},
		route{"GET /api/rightsizing", s.rightSizing(true)},
		route{"GET /rightsizing.csv", s.rightSizingCSV},
		route{"GET /charts/{chart}", s.chart},
		route{"GET /metrics", s.metrics},
	)
}

// secureHeaders keeps pages from being framed or sniffed; scripts are
// neither needed nor allowed.
func secureHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self'; style-src 'self'; script-src 'none'")
		h.ServeHTTP(w, r)
	})
}

// resultsPage is the data of the search and list pages.
type resultsPage struct {
	Title     string
	Q         string
	Sort      string
	LabelCols []string
	Result    Result
	Err       string
	CSV       string
	JSON      string
	Clusters  []ClusterStatus
}

func (s *server) search(api bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.answer(w, r, api, "Search", r.FormValue("q"))
	}
}

// list is `kubectl get` over the fleet: cluster and namespace may be _all.
func (s *server) list(api bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		k, ok := LookupKind(r.PathValue("kind"))
		if !ok {
			s.fail(w, r, api, fmt.Errorf("kind %q: %w", r.PathValue("kind"), ErrNotFound))
			return
		}
		cl, ns := r.PathValue("cluster"), r.PathValue("namespace")
		q := fmt.Sprintf("cluster:%s kind:%s", cl, k.Plural)
		title := fmt.Sprintf("%s in %s", k.Plural, clusterTitle(cl))
		if ns != "" && k.Namespaced {
			q += " namespace:" + ns
			title += ", namespace " + clusterTitle(ns)
		}
		if extra := r.FormValue("q"); extra != "" {
			q += " " + extra
		}
		s.answer(w, r, api, title, q)
	}
}

func clusterTitle(s string) string {
	if s == All {
		return "all"
	}
	return s
}

// answer runs query text and writes the result as HTML, JSON or CSV.
func (s *server) answer(w http.ResponseWriter, r *http.Request, api bool, title, text string) {
	params, err := parseResultParams(r)
	if err != nil {
		s.fail(w, r, api, err)
		return
	}
	page := resultsPage{Title: title, Q: text, Sort: params.sort, LabelCols: params.labelCols, Clusters: s.c.Clusters()}
	q, err := ParseQuery(text)
	if err != nil {
		if api {
			s.fail(w, r, api, fmt.Errorf("%w: %w", errBadRequest, err))
			return
		}
		page.Err = err.Error()
	} else {
		page.Result = s.c.SearchFor(r.Context(), q, params.limit, page.Sort)
	}
	switch {
	case params.csv:
		writeItemsCSV(w, page.Result, page.LabelCols)
	case api:
		writeResultJSON(w, page.Result)
	default:
		v := r.URL.Query()
		v.Set("format", "csv")
		page.CSV = r.URL.Path + "?" + v.Encode()
		v.Del("format")
		page.JSON = "/api" + r.URL.Path + "?" + v.Encode()
		if r.URL.Path == "/search" {
			page.JSON = "/api/search?" + v.Encode()
		}
		s.render(w, http.StatusOK, "results", page)
	}
}

func (s *server) detail(api bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d, err := s.c.Detail(r.Context(), r.PathValue("cluster"), r.PathValue("kind"), r.PathValue("namespace"), r.PathValue("name"))
		if err != nil {
			s.fail(w, r, api, err)
			return
		}
		if api {
			writeJSON(w, d)
			return
		}
		s.render(w, http.StatusOK, "detail", struct {
			Title string
			Q     string
			D     *Detail
		}{Title: d.Item.Kind + " " + d.Item.Name, D: d})
	}
}

func (s *server) fleet(api bool) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		rows := s.c.Fleet()
		if api {
			writeJSON(w, rows)
			return
		}
		s.render(w, http.StatusOK, "fleet", struct {
			Title string
			Q     string
			Rows  []FleetRow
		}{Title: "Fleet", Rows: rows})
	}
}

func (s *server) cost(api bool) http.HandlerFunc {
	return reportHandler(s, api, "cost", "Cost and slack", s.c.Cost)
}

// reportHandler serves a report as JSON (api) or as the page template
// that shows it under .R.
func reportHandler[R any](s *server, api bool, page, title string, report func() R) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		rep := report()
		if api {
			writeJSON(w, rep)
			return
		}
		s.render(w, http.StatusOK, page, struct {
			Title string
			Q     string
			R     R
		}{Title: title, R: rep})
	}
}

var (
	errBadRequest = errors.New("bad request")
	errForbidden  = errors.New("forbidden")
)

// fail writes err with a status that fits it.
func (s *server) fail(w http.ResponseWriter, _ *http.Request, api bool, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound), apierrors.IsNotFound(err):
		code = http.StatusNotFound
	case errors.Is(err, errBadRequest):
		code = http.StatusBadRequest
	case errors.Is(err, errForbidden), apierrors.IsForbidden(err):
		code = http.StatusForbidden
	}
	if api {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	s.render(w, code, "error", struct {
		Title string
		Q     string
		Err   string
	}{Title: http.StatusText(code), Err: err.Error()})
}

// render executes a page into memory first, so a template error is a 500
// rather than half a page with status 200.
func (s *server) render(w http.ResponseWriter, code int, page string, data any) {
	var buf bytes.Buffer
	if err := s.pages[page].Execute(&buf, data); err != nil {
		http.Error(w, "rendering page: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// writeItemsCSV writes a result as CSV with the asked-for label columns.
func writeItemsCSV(w http.ResponseWriter, res Result, labelCols []string) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="bosun-search.csv"`)
	_ = ItemsCSV(w, res, labelCols)
}

// age formats a duration like kubectl: 45s, 12m, 5h, 3d.
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < 2*time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < 2*time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	}
}

func sinceText(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return age(now.Sub(t)) + " ago"
}
