package console

import (
	"encoding/json"
	"html"
	"net/url"
	"strconv"
	"strings"
	"testing"

	clocktesting "k8s.io/utils/clock/testing"
)

// Issue 18, item 10: a query parameter with a value the console does not
// know is a 400 naming the parameter, the bad value and the accepted
// values, on the JSON API, the HTML pages and CSV alike; it used to be
// ignored (sort=bogus gave the default order, format=xml the page).
func TestBadQueryParameterIs400(t *testing.T) {
	_, srv := startFake(t, clocktesting.NewFakeClock(t0), fakeCluster(t, "a",
		pod("shop", "web-1", "n1", "100m", "128Mi", map[string]string{"team": "shop"})))
	routes := []string{"/search?q=web", "/api/search?q=web", "/clusters/a/namespaces/shop/pods?x=1", "/api/clusters/a/pods?x=1"}
	bad := []struct {
		param, value string
		// mention is what the message must say besides the parameter's
		// name and the bad value: the accepted values.
		mention string
	}{
		{"sort", "bogus", "name, namespace, kind, status, node, restarts, age, -age"},
		{"sort", "Name", "name, namespace, kind, status, node, restarts, age, -age"},
		{"format", "xml", "csv"},
		{"labelcols", "not a key", "label key"},
		{"limit", "-1", "a number >= 0"},
	}
	for _, route := range routes {
		for _, b := range bad {
			u := srv.URL + route + "&" + b.param + "=" + url.QueryEscape(b.value)
			msg := errorMessage(t, fetch(t, u, 400))
			for _, s := range []string{"parameter " + b.param, strconv.Quote(b.value), b.mention} {
				if !strings.Contains(msg, s) {
					t.Errorf("GET %s: the message lacks %q: %s", u, s, msg)
				}
			}
		}
		for _, ok := range []string{"sort=name", "sort=-age", "sort=", "format=csv", "labelcols=team,app.kubernetes.io/name", "limit=0"} {
			fetch(t, srv.URL+route+"&"+ok, 200)
		}
	}
	// The orders docs/console.md promises.
	for _, order := range []string{"name", "namespace", "kind", "status", "node", "restarts", "age", "-age"} {
		fetch(t, srv.URL+"/api/search?q=web&sort="+url.QueryEscape(order), 200)
	}
}

// errorMessage is the error of a JSON answer, or the text of an error
// page's message.
func errorMessage(t *testing.T, body string) string {
	t.Helper()
	if strings.HasPrefix(body, "{") {
		var e struct{ Error string }
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Fatalf("decoding %s: %v", body, err)
		}
		return e.Error
	}
	_, msg, ok := strings.Cut(body, `<p class="error">`)
	if !ok {
		t.Fatalf("the page has no error message:\n%s", body)
	}
	msg, _, _ = strings.Cut(msg, "</p>")
	return html.UnescapeString(msg)
}
