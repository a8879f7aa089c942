package console

import (
	"context"
	"fmt"
	"time"

	"github.com/bosun-platform/bosun/internal/provider"
)

// PriceSource is the part of a cloud provider the console reads prices
// from (provider.Provider satisfies it: the local cloud today, AWS later).
type PriceSource interface {
	// Offerings lists every instance type, zone and lifecycle on sale, with
	// its current hourly price.
	Offerings(ctx context.Context) ([]provider.Offering, error)
}

// pollPrices refreshes the provider's offerings every interval. On error
// the last good prices stay in use and the error is kept for the cost page.
func (c *Console) pollPrices(ctx context.Context, every time.Duration) {
	t := c.clock.NewTicker(every)
	defer t.Stop()
	for {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		offs, err := c.prices.Offerings(rctx)
		cancel()
		c.priceMu.Lock()
		if err != nil {
			c.priceErr = fmt.Sprintf("reading provider prices: %v", err)
		} else {
			c.offerings, c.priceErr = offs, ""
		}
		c.priceMu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

// costOptions returns the cost options with the latest provider prices.
func (c *Console) costOptions() (CostOptions, string) {
	c.priceMu.RLock()
	defer c.priceMu.RUnlock()
	o := c.cost
	o.Offerings = c.offerings
	return o, c.priceErr
}
