// Package local is the provider.Provider of Bosun's local cloud: a client
// of the API that `bosun up` serves on loopback. It also exposes the
// simulation controls (capacity, interruptions, status) that `bosun sim`
// uses.
package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/bosun-platform/bosun/internal/atomicfile"
	"github.com/bosun-platform/bosun/internal/provider"
	"github.com/bosun-platform/bosun/internal/provider/local/wire"
)

// Endpoint is how to reach a running local cloud; `bosun up` writes it to
// cloud.json in its state directory.
type Endpoint struct {
	URL   string `json:"url"`
	Token string `json:"token"`
}

// EndpointFile is the name of the endpoint file in the state directory.
const EndpointFile = "cloud.json"

// WriteEndpoint stores the endpoint in stateDir (mode 0600: it holds the
// token).
func WriteEndpoint(stateDir string, e Endpoint) error {
	data, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("encoding endpoint, %w", err)
	}
	return atomicfile.Write(filepath.Join(stateDir, EndpointFile), data, 0o600)
}

// ReadEndpoint reads the endpoint from stateDir, the state directory of
// `bosun up` (what --local-cloud names in every command). The error says
// what is missing: the directory, or a running local cloud in it; a file
// given for the directory (such as cloud.json itself) is refused.
func ReadEndpoint(stateDir string) (Endpoint, error) {
	st, err := os.Stat(stateDir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return Endpoint{}, fmt.Errorf("%s: no such directory; expected the state directory of `bosun up` (default $BOSUN_HOME or ~/.bosun) on the machine that runs it", stateDir)
	case err != nil:
		return Endpoint{}, fmt.Errorf("reading the state directory, %w", err)
	case !st.IsDir() && filepath.Base(stateDir) == EndpointFile:
		return Endpoint{}, fmt.Errorf("%s is a file, not a directory; expected the state directory of `bosun up` that holds it: %s", stateDir, filepath.Dir(stateDir))
	case !st.IsDir():
		return Endpoint{}, fmt.Errorf("%s is a file, not a directory; expected the state directory of `bosun up`, which holds %s", stateDir, EndpointFile)
	}
	return ReadEndpointFile(filepath.Join(stateDir, EndpointFile))
}

// ReadEndpointFile reads an endpoint file (cloud.json) by its path.
func ReadEndpointFile(path string) (Endpoint, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Endpoint{}, fmt.Errorf("no local cloud is running (%s does not exist); start one with `bosun up`", path)
	}
	if err != nil {
		return Endpoint{}, fmt.Errorf("reading %s, %w", path, err)
	}
	var e Endpoint
	if err := json.Unmarshal(data, &e); err != nil || e.URL == "" {
		return Endpoint{}, fmt.Errorf("%s is not a valid endpoint file: %v", path, err)
	}
	return e, nil
}

// Client talks to a local cloud. It implements provider.Provider.
type Client struct {
	endpoint Endpoint
	http     *http.Client
}

var _ provider.Provider = (*Client)(nil)

// New returns a client for the endpoint.
func New(e Endpoint) *Client {
	return &Client{endpoint: e, http: &http.Client{Timeout: 10 * time.Second}}
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, body, out any) error {
	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encoding request, %w", err)
		}
		rd = bytes.NewReader(data)
	}
	u := c.endpoint.URL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return fmt.Errorf("building request, %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.endpoint.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("local cloud %s %s, %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var apiErr wire.APIError
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&apiErr)
		switch apiErr.Code {
		case wire.CodeNotFound:
			return &remoteError{msg: apiErr.Message, kind: provider.ErrNotFound}
		case wire.CodeOutOfRange:
			return &remoteError{msg: apiErr.Message, kind: provider.ErrOutOfRange}
		case wire.CodeUnsupported:
			return &remoteError{msg: apiErr.Message, kind: provider.ErrUnsupported}
		}
		return fmt.Errorf("local cloud %s %s: %s: %s", method, path, resp.Status, apiErr.Message)
	}
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decoding %s answer, %w", path, err)
	}
	return nil
}

// remoteError carries the server's message (which already names the
// problem) and matches the provider sentinel with errors.Is.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

func id(groupID string) url.Values { return url.Values{"id": {groupID}} }

// NodeGroups implements provider.Provider.
func (c *Client) NodeGroups(ctx context.Context) ([]provider.NodeGroup, error) {
	var out []provider.NodeGroup
	return out, c.do(ctx, http.MethodGet, wire.PathGroups, nil, nil, &out)
}

// NodeGroup implements provider.Provider.
func (c *Client) NodeGroup(ctx context.Context, groupID string) (provider.NodeGroup, error) {
	var out provider.NodeGroup
	return out, c.do(ctx, http.MethodGet, wire.PathGroup, id(groupID), nil, &out)
}

// SetTargetSize implements provider.Provider.
func (c *Client) SetTargetSize(ctx context.Context, groupID string, size int) error {
	return c.do(ctx, http.MethodPut, wire.PathTarget, id(groupID), wire.TargetRequest{Size: size}, nil)
}

// Instances implements provider.Provider.
func (c *Client) Instances(ctx context.Context, groupID string) ([]provider.Instance, error) {
	var out []provider.Instance
	return out, c.do(ctx, http.MethodGet, wire.PathInstances, id(groupID), nil, &out)
}

// DeleteInstances implements provider.Provider.
func (c *Client) DeleteInstances(ctx context.Context, groupID string, ids []string) error {
	return c.do(ctx, http.MethodPost, wire.PathDelete, id(groupID), wire.DeleteRequest{InstanceIDs: ids}, nil)
}

// Offerings implements provider.Provider.
func (c *Client) Offerings(ctx context.Context) ([]provider.Offering, error) {
	var out []provider.Offering
	return out, c.do(ctx, http.MethodGet, wire.PathOfferings, nil, nil, &out)
}

// Interruptions implements provider.Provider.
func (c *Client) Interruptions(ctx context.Context, since time.Time) ([]provider.InterruptionNotice, error) {
	var out []provider.InterruptionNotice
	return out, c.do(ctx, http.MethodGet, wire.PathInterruptions, url.Values{"since": {since.UTC().Format(time.RFC3339Nano)}}, nil, &out)
}

// SetCapacity sets or clears a capacity limit and returns the limits in
// force.
func (c *Client) SetCapacity(ctx context.Context, req wire.CapacityRequest) ([]wire.CapacityLimit, error) {
	var out []wire.CapacityLimit
	return out, c.do(ctx, http.MethodPost, wire.PathCapacity, nil, req, &out)
}

// Interrupt issues a spot interruption notice for a node or instance.
func (c *Client) Interrupt(ctx context.Context, node string) (provider.InterruptionNotice, error) {
	var out provider.InterruptionNotice
	return out, c.do(ctx, http.MethodPost, wire.PathInterrupt, nil, wire.InterruptRequest{Node: node}, &out)
}

// Status returns the cloud's groups, limits and usage.
func (c *Client) Status(ctx context.Context) (wire.Status, error) {
	var out wire.Status
	return out, c.do(ctx, http.MethodGet, wire.PathStatus, nil, nil, &out)
}

// Infra is the local cloud's infrastructure seam over its HTTP API
// (provider.Infra): the node groups of local clusters, planned and applied
// by a `bosun controller` that runs beside `bosun up`.
type Infra struct{ c *Client }

var _ provider.Infra = (*Infra)(nil)

// NewInfra returns the infrastructure client for the endpoint.
func NewInfra(e Endpoint) *Infra {
	c := New(e)
	c.http.Timeout = 2 * time.Minute // an apply waits for deleted groups' nodes to go
	return &Infra{c: c}
}

// Plan implements provider.Infra.
func (i *Infra) Plan(ctx context.Context, spec provider.ClusterSpec) ([]provider.Change, error) {
	var out []provider.Change
	err := i.c.do(ctx, http.MethodPost, wire.PathInfraPlan, nil, spec, &out)
	return out, err
}

// Apply implements provider.Infra.
func (i *Infra) Apply(ctx context.Context, spec provider.ClusterSpec) ([]provider.Change, error) {
	var out []provider.Change
	err := i.c.do(ctx, http.MethodPost, wire.PathInfraApply, nil, spec, &out)
	return out, err
}

// ControlPlane implements provider.Infra.
func (i *Infra) ControlPlane(ctx context.Context, cluster string) (provider.ControlPlaneInfo, error) {
	var out provider.ControlPlaneInfo
	err := i.c.do(ctx, http.MethodGet, wire.PathInfraControlPlane, url.Values{"cluster": {cluster}}, nil, &out)
	return out, err
}
