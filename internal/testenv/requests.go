package testenv

import (
	"net/http"
	"strings"
	"sync/atomic"
)

// RequestCounter counts the API requests a client sends, watches aside
// (they stay open): install it with rest.Config.Wrap(counter.Wrap) and
// read it with Load, for "an idle pass sends no request" assertions.
type RequestCounter struct{ atomic.Int64 }

// Wrap is a rest.Config transport wrapper that counts through c.
func (c *RequestCounter) Wrap(next http.RoundTripper) http.RoundTripper {
	return countingTransport{next: next, c: c}
}

type countingTransport struct {
	next http.RoundTripper
	c    *RequestCounter
}

func (t countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.Contains(req.URL.RawQuery, "watch=true") {
		t.c.Add(1)
	}
	return t.next.RoundTrip(req)
}
