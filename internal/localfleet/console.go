package localfleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/bosun-platform/bosun/internal/console"
	"github.com/bosun-platform/bosun/internal/fleet"
)

// The local fleet's console reads the metrics API every 15 seconds (the
// default is a minute) and keeps an hour of it: metrics-server resolves
// kwok's simulated usage every 10 seconds, and a fleet that lives for a
// session should show slack and right-sizing within a minute of start.
const (
	LocalUsageInterval = 15 * time.Second
	LocalUsageWindow   = time.Hour
)

// startConsole serves `bosun console` over every cluster of the fleet on
// addr (loopback only, so no authentication), with node prices from the
// local cloud's market. If addr is taken it falls
// back to a free loopback port rather than failing the fleet. It returns
// the URL.
func startConsole(ctx context.Context, out io.Writer, addr, kubeconfig string, f *fleet.Fleet, prices console.PriceSource) (string, error) {
	srcs, err := console.ClustersFromKubeconfig(kubeconfig, nil)
	if err != nil {
		return "", fmt.Errorf("console: %w", err)
	}
	console.ApplyFleet(srcs, f)
	c, err := console.New(console.Options{Clusters: srcs, Prices: prices, UsageInterval: LocalUsageInterval, UsageWindow: LocalUsageWindow})
	if err != nil {
		return "", fmt.Errorf("console: %w", err)
	}
	h, err := c.Handler(console.Auth{})
	if err != nil {
		return "", fmt.Errorf("console: %w", err)
	}
	if !console.IsLoopback(addr) {
		return "", fmt.Errorf("--console %s: bosun up serves the console on loopback only; use bosun console with authentication for other addresses", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(out, "  console: %s is taken (%v); using a free port\n", addr, err)
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return "", fmt.Errorf("console: listening, %w", err)
		}
	}
	c.Start(ctx)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			fmt.Fprintf(out, "console stopped: %v\n", err)
		}
	}()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shut)
	}()
	return "http://" + ln.Addr().String(), nil
}
