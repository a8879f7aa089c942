package console

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
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
	// TrustedProxies are the source addresses the trusted headers are
	// accepted from: the authenticating proxy's. Empty means loopback only
	// (a proxy beside the console, as a sidecar or on the same host). A
	// request from anywhere else is refused even if it carries the header.
	TrustedProxies []netip.Prefix
}

// Enabled reports whether any method is configured.
func (a Auth) Enabled() bool { return len(a.Tokens) > 0 || a.TrustedHeader != "" }

// ErrAuthConflict is returned by Validate when tokens and a trusted header
// are both configured.
var ErrAuthConflict = errors.New("a token file and a trusted header exclude each other: any client that reaches the console directly could send the header and skip the token; use one method")

// Validate reports configurations that would let a request in without
// proof of who sent it: tokens together with a trusted header (the header
// alone would pass), or groups or proxies without the header they qualify.
func (a Auth) Validate() error {
	if len(a.Tokens) > 0 && a.TrustedHeader != "" {
		return ErrAuthConflict
	}
	if a.TrustedHeader == "" && (a.TrustedGroupsHeader != "" || len(a.TrustedProxies) > 0) {
		return errors.New("trusted groups header and trusted proxies need a trusted header")
	}
	return nil
}

// loopbackProxies are the trusted proxies when none are configured.
var loopbackProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// fromTrustedProxy reports whether r's peer address is one of the
// trusted proxies.
func (a Auth) fromTrustedProxy(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	proxies := a.TrustedProxies
	if len(proxies) == 0 {
		proxies = loopbackProxies
	}
	addr := ap.Addr().Unmap()
	for _, p := range proxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// authenticator decides who a request comes from. Built once from Auth.
type authenticator struct {
	auth   Auth
	tokens tokenSet
}

// user returns the authenticated user of r; ok is false when there is
// none. With a trusted header, only the header counts, and only from a
// trusted proxy; with tokens, only the bearer token counts.
func (a authenticator) user(r *http.Request) (User, bool) {
	if a.auth.TrustedHeader != "" {
		name := r.Header.Get(a.auth.TrustedHeader)
		if name == "" || !a.auth.fromTrustedProxy(r) {
			return User{}, false
		}
		u := User{Name: name}
		if a.auth.TrustedGroupsHeader != "" {
			u.Groups = splitGroups(r.Header.Values(a.auth.TrustedGroupsHeader))
		}
		return u, true
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && tok != "" {
		return a.tokens.match(tok)
	}
	return User{}, false
}

// tokenSet holds the SHA-256 of every known token. match hashes the
// presented token to the same fixed length and compares it with every
// entry in constant time, without stopping at a match, so neither the
// length of a token nor its position in the file shows in the timing.
type tokenSet struct {
	sums  [][sha256.Size]byte
	users []User
	// compare is subtle.ConstantTimeCompare; tests record the calls.
	compare func(a, b []byte) int
}

func newTokenSet(tokens map[string]User) tokenSet {
	ts := tokenSet{compare: subtle.ConstantTimeCompare}
	for tok, u := range tokens {
		ts.sums = append(ts.sums, sha256.Sum256([]byte(tok)))
		ts.users = append(ts.users, u)
	}
	return ts
}

func (ts tokenSet) match(tok string) (User, bool) {
	sum := sha256.Sum256([]byte(tok))
	found := -1
	for i := range ts.sums {
		eq := ts.compare(ts.sums[i][:], sum[:])
		// Select without branching on the secret comparison.
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 {
		return User{}, false
	}
	return ts.users[found], true
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
	authn := authenticator{auth: a, tokens: newTokenSet(a.Tokens)}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			h.ServeHTTP(w, r)
			return
		}
		if u, ok := authn.user(r); ok {
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
