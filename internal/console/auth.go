package console

import (
	"bufio"
	"context"
	"crypto/subtle"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
)

// Auth guards the console when it listens beyond loopback. The console is
// read-only either way; auth decides who may read.
type Auth struct {
	// Tokens maps a bearer token to the user it names (a token file).
	Tokens map[string]string
	// TrustedHeader names a header set by an authenticating proxy (for
	// example X-Forwarded-User from oauth2-proxy); its value is the user.
	// Only safe when the console is reachable through that proxy alone.
	TrustedHeader string
}

// Enabled reports whether any method is configured.
func (a Auth) Enabled() bool { return len(a.Tokens) > 0 || a.TrustedHeader != "" }

// user returns the authenticated user of r, or "".
func (a Auth) user(r *http.Request) string {
	if a.TrustedHeader != "" {
		if u := r.Header.Get(a.TrustedHeader); u != "" {
			return u
		}
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && tok != "" {
		for known, user := range a.Tokens {
			if subtle.ConstantTimeCompare([]byte(known), []byte(tok)) == 1 {
				return user
			}
		}
	}
	return ""
}

// userKey carries the authenticated user in a request's context.
type userKey struct{}

// UserFrom returns the authenticated user of a request's context, or "".
func UserFrom(ctx context.Context) string {
	u, _ := ctx.Value(userKey{}).(string)
	return u
}

// wrap rejects requests without a user, except /healthz, and puts the
// user in the request's context (for impersonation).
func (a Auth) wrap(h http.Handler) http.Handler {
	if !a.Enabled() {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			h.ServeHTTP(w, r)
			return
		}
		if u := a.user(r); u != "" {
			h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), userKey{}, u)))
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="bosun console"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
	})
}

// LoadTokens reads a token file: one "token user" per line (whitespace or
// comma separated); blank lines and lines starting with # are ignored.
func LoadTokens(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening token file, %w", err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
		if len(fields) != 2 {
			return nil, fmt.Errorf("token file %s line %d: want \"token user\"", path, n)
		}
		out[fields[0]] = fields[1]
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading token file, %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("token file %s has no tokens", path)
	}
	return out, nil
}

// IsLoopback reports whether a listen address only accepts local
// connections (127.0.0.0/8, ::1 or localhost).
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
