package console

import (
	"fmt"
	"html"
	"io"
	"strings"
)

// Bar is one bar of a chart.
type Bar struct {
	Label string
	Value float64
	// Class colours the bar (CSS class in the SVG), e.g. "spot".
	Class string
}

// WriteBarChart writes a horizontal bar chart as a standalone SVG: one bar
// per entry, largest first as given, with its value formatted by format
// (e.g. "$%.2f/h"). At most 15 bars are drawn; the rest are summed into
// "other".
func WriteBarChart(w io.Writer, title string, bars []Bar, format string) error {
	const maxBars, rowH, labelW, barW, valueW = 15, 22, 180, 360, 110
	if len(bars) > maxBars {
		other := Bar{Label: "other"}
		for _, b := range bars[maxBars-1:] {
			other.Value += b.Value
		}
		bars = append(append([]Bar(nil), bars[:maxBars-1]...), other)
	}
	peak := 0.0
	for _, b := range bars {
		peak = max(peak, b.Value)
	}
	width, height := labelW+barW+valueW, 30+rowH*max(len(bars), 1)
	var s strings.Builder
	fmt.Fprintf(&s, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`, width, height, width, height, html.EscapeString(title))
	s.WriteString(`<style>text{font:12px sans-serif;fill:#222}.t{font-weight:bold}rect{fill:#4a7ab8}rect.spot{fill:#3a9a5b}rect.on-demand{fill:#c0803a}</style>`)
	fmt.Fprintf(&s, `<text class="t" x="0" y="16">%s</text>`, html.EscapeString(title))
	if len(bars) == 0 {
		s.WriteString(`<text x="0" y="42">no data</text>`)
	}
	for i, b := range bars {
		y := 26 + i*rowH
		w := 0.0
		if peak > 0 {
			w = barW * b.Value / peak
		}
		fmt.Fprintf(&s, `<text x="%d" y="%d" text-anchor="end">%s</text>`, labelW-6, y+14, html.EscapeString(truncate(b.Label, 28)))
		cls := ""
		if b.Class != "" {
			cls = fmt.Sprintf(` class="%s"`, html.EscapeString(b.Class))
		}
		fmt.Fprintf(&s, `<rect%s x="%d" y="%d" width="%.1f" height="%d"><title>%s</title></rect>`, cls, labelW, y+2, w, rowH-6, html.EscapeString(b.Label))
		fmt.Fprintf(&s, `<text x="%.1f" y="%d">%s</text>`, float64(labelW)+w+6, y+14, html.EscapeString(fmt.Sprintf(format, b.Value)))
	}
	s.WriteString(`</svg>`)
	_, err := io.WriteString(w, s.String())
	if err != nil {
		return fmt.Errorf("writing chart, %w", err)
	}
	return nil
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
