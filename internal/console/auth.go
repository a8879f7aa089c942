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

// User is who a request comes from: the name and groups the console passes
// on when it impersonates the user toward the clusters.
type User struct {
	Name   string   `json:"name"`
	Groups []string `json:"groups,omitempty"`
}

// Auth guards the console when it listens beyond loopback. The console is
// read-only either way; auth decides who may read.
type Auth struct {
	// Tokens maps a bearer token to the user it names (a token file).
	Tokens map[string]User
	// TrustedHeader names a header set by an authenticating proxy (for
	// example X-Forwarded-User from oauth2-proxy); its value is the user.
	// Only safe when the console is reachable through that proxy alone.
	TrustedHeader string
	// TrustedGroupsHeader, with TrustedHeader, names the header carrying
	// the user's groups (for example X-Forwarded-Groups), comma separated
	// or repeated. Empty: trusted-header users have no groups. The proxy
	// must set or strip it, as it does the user header.
	TrustedGroupsHeader string
}

// Enabled reports whether any method is configured.
func (a Auth) Enabled() bool { return len(a.Tokens) > 0 || a.TrustedHeader != "" }

// user returns the authenticated user of r; ok is false when there is
// none.
func (a Auth) user(r *http.Request) (User, bool) {
	if a.TrustedHeader != "" {
		if name := r.Header.Get(a.TrustedHeader); name != "" {
			u := User{Name: name}
			if a.TrustedGroupsHeader != "" {
				u.Groups = splitGroups(r.Header.Values(a.TrustedGroupsHeader))
			}
			return u, true
		}
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && tok != "" {
		for known, user := range a.Tokens {
			if subtle.ConstantTimeCompare([]byte(known), []byte(tok)) == 1 {
				return user, true
			}
		}
	}
	return User{}, false
}

// splitGroups reads groups from header values, each comma separated.
func splitGroups(values []string) []string {
	var out []string
	for _, v := range values {
		for _, g := range strings.Split(v, ",") {
			if g = strings.TrimSpace(g); g != "" {
				out = append(out, g)
			}
		}
	}
	return out
}

// userKey carries the authenticated user in a request's context.
type userKey struct{}

// WithUser returns ctx carrying u, as the auth middleware does.
func WithUser(ctx context.Context, u User) context.Context {
	return context.WithValue(ctx, userKey{}, u)
}

// UserFrom returns the authenticated user of a request's context; the
// zero User (empty Name) when there is none.
func UserFrom(ctx context.Context) User {
	u, _ := ctx.Value(userKey{}).(User)
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
		if u, ok := a.user(r); ok {
			h.ServeHTTP(w, r.WithContext(WithUser(r.Context(), u)))
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="bosun console"`)
		http.Error(w, "authentication required", http.StatusUnauthorized)
	})
}

// LoadTokens reads a token file: one "token user [group ...]" per line,
// fields separated by whitespace or commas; blank lines and lines starting
// with # are ignored. The groups are passed on with the user when the
// console impersonates.
func LoadTokens(path string) (map[string]User, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening token file, %w", err)
	}
	defer f.Close()
	out := map[string]User{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
		if len(fields) < 2 {
			return nil, fmt.Errorf("token file %s line %d: want \"token user [group ...]\"", path, n)
		}
		if _, dup := out[fields[0]]; dup {
			return nil, fmt.Errorf("token file %s line %d: the token is listed twice", path, n)
		}
		out[fields[0]] = User{Name: fields[1], Groups: fields[2:]}
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
