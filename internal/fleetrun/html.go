package fleetrun

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// report.html is one file a reader can open anywhere, mail, or print: no
// script, no request to any host. Charts are drawn here as SVG and put
// inline; their text names Liberation Sans, whose metrics the plot was laid
// out with, and the page's CSS falls back to the fonts metric-compatible
// with it (Arimo, Arial) rather than embedding a few hundred kilobytes of
// font data in every chart.

//go:embed report.html.tmpl
var reportHTMLText string

var reportHTML = template.Must(template.New("report.html").Funcs(template.FuncMap{
	"dur":   formatSeconds,
	"count": formatCount,
	"bytes": formatBytes,
	"value": thresholdValue,
}).Parse(reportHTMLText))

// Chart colours. Each series has a hue no other chart uses (except the
// outcome colours, which mean the same in the rollout curve and the cohort
// bars), so a reader can tell them apart and a screenshot test can find
// each chart by its colour.
var (
	colourUpdated     = rgb(0x1a9641) // green
	colourDownloading = rgb(0x2c7bb6) // blue
	colourBricked     = rgb(0xd7191c) // red
	colourReverted    = rgb(0xfdae61) // amber
	colourStillOld    = rgb(0xb8b8b8) // grey
	colourFailed      = rgb(0x8e0152) // wine
	colourRequests    = rgb(0x7b3294) // purple
	colourBytes       = rgb(0xe66101) // orange
	colourOpen        = rgb(0x00a6a6) // teal
	colourTimeToUpd   = rgb(0xc51b7d) // magenta
	colourDuration    = rgb(0x8c510a) // brown
	colourAxis        = rgb(0x555555)
	colourGrid        = rgb(0xe4e4e4)
	colourPublished   = rgb(0x999999)
)

func rgb(v uint32) color.RGBA {
	return color.RGBA{R: uint8(v >> 16), G: uint8(v >> 8), B: uint8(v), A: 0xff}
}

// tint is c mixed with white: the fill under a line.
func tint(c color.RGBA, white float64) color.RGBA {
	mix := func(v uint8) uint8 { return uint8(math.Round(float64(v) + (255-float64(v))*white)) }
	return color.RGBA{R: mix(c.R), G: mix(c.G), B: mix(c.B), A: 0xff}
}

// Chart sizes: a full-width chart and one of a pair, in points. The page
// scales both to its column, so they share a text size on screen.
const (
	fullWidth  = 10 * vg.Inch
	fullHeight = 3.4 * vg.Inch
	halfWidth  = 5 * vg.Inch
	halfHeight = 3 * vg.Inch
)

// chart is one figure of the page: an inline SVG, or, when there is
// nothing to draw, a sentence that says so.
type chart struct {
	ID, Title string
	Caption   string
	Legend    []legendEntry
	SVG       template.HTML
	Empty     string
}

type legendEntry struct {
	Label  string
	Colour template.CSS
}

func entry(label string, c color.RGBA) legendEntry {
	return legendEntry{label, template.CSS(fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B))}
}

// htmlView is what the template reads: the report and what is derived
// from it for display.
type htmlView struct {
	R              *Report
	SimulatedTime  string
	ThresholdsOK   int
	Fractions      []fractionRow
	Distributions  []distributionRow
	Rollout        chart
	Requests       chart
	Bytes          chart
	Open           chart
	TimeToUpdate   chart
	UpdateDuration chart
	Cohorts        chart
}

type fractionRow struct {
	Label, Time string
	Reached     bool
}

type distributionRow struct {
	Name string
	Distribution
}

// HTML is the report as report.html: a self-contained page (inline CSS and
// SVG charts, no script, no external reference) with the run's header,
// thresholds, charts of the rollout, gateway load and update times, and
// the tables of report.json. The same Report gives the same bytes. It
// fails only for a Report whose histograms do not match their bounds.
func (r *Report) HTML() ([]byte, error) {
	v := htmlView{R: r, SimulatedTime: formatSeconds(r.Simulated)}
	for _, t := range r.Thresholds {
		if t.OK {
			v.ThresholdsOK++
		}
	}
	for _, f := range []struct {
		label string
		at    *float64
	}{{"50%", r.TimeToFraction.P50}, {"90%", r.TimeToFraction.P90}, {"99%", r.TimeToFraction.P99}, {"100%", r.TimeToFraction.P100}} {
		row := fractionRow{Label: f.label, Time: "not reached"}
		if f.at != nil {
			row.Time, row.Reached = formatSeconds(*f.at), true
		}
		v.Fractions = append(v.Fractions, row)
	}
	v.Distributions = []distributionRow{{"time to update", r.TimeToUpdate}, {"update duration", r.UpdateDuration}}

	var err error
	charts := []struct {
		dst  *chart
		draw func(*Report) (chart, error)
	}{
		{&v.Rollout, rolloutChart},
		{&v.Requests, requestsChart},
		{&v.Bytes, bytesChart},
		{&v.Open, openChart},
		{&v.TimeToUpdate, timeToUpdateChart},
		{&v.UpdateDuration, updateDurationChart},
		{&v.Cohorts, cohortsChart},
	}
	for _, c := range charts {
		if *c.dst, err = c.draw(r); err != nil {
			return nil, err
		}
	}
	var b bytes.Buffer
	if err := reportHTML.Execute(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// timeAxis is the x axis of the time charts: simulated time since the run
// began, in hours, or in minutes for a run of two hours or less (where
// hours would read 0.05).
type timeAxis struct {
	unit  float64 // seconds
	label string
}

func timeAxisOf(r *Report) timeAxis {
	if r.Simulated <= 2*3600 {
		return timeAxis{60, "minutes of simulated time"}
	}
	return timeAxis{3600, "hours of simulated time"}
}

func (a timeAxis) x(s float64) float64 { return s / a.unit }

// apply spans the whole run, so every time chart shares its x axis.
func (a timeAxis) apply(p *plot.Plot, r *Report) {
	p.X.Label.Text = a.label
	p.X.Min = 0
	p.X.Max = math.Max(p.X.Max, a.x(r.Simulated))
	if p.X.Max <= 0 {
		p.X.Max = a.x(3600)
	}
}

func rolloutChart(r *Report) (chart, error) {
	c := chart{ID: "rollout", Title: "Rollout curve",
		Caption: "Devices running the new version confirmed, downloading it, and bricked, sampled every minute of simulated time. Dashed lines: a version published.",
		Legend:  []legendEntry{entry("updated", colourUpdated), entry("downloading", colourDownloading), entry("bricked", colourBricked)}}
	active := false
	for _, s := range r.Series {
		active = active || s.Updated > 0 || s.Downloading > 0 || s.Bricked > 0
	}
	if !active {
		c.Empty = "No device downloaded, updated or bricked during the run, so there is no rollout curve."
		return c, nil
	}
	ta := timeAxisOf(r)
	p := newPlot("", "devices")
	p.Y.Tick.Marker = integerTicks{}
	maxY := float64(r.Devices)
	for _, pub := range r.Published {
		l := &plotter.Line{XYs: plotter.XYs{{X: ta.x(pub.At), Y: 0}, {X: ta.x(pub.At), Y: maxY}}}
		l.LineStyle = draw.LineStyle{Color: colourPublished, Width: vg.Points(1), Dashes: []vg.Length{vg.Points(4), vg.Points(3)}}
		p.Add(l)
	}
	for _, series := range []struct {
		colour color.RGBA
		value  func(Sample) int
	}{
		{colourDownloading, func(s Sample) int { return s.Downloading }},
		{colourBricked, func(s Sample) int { return s.Bricked }},
		{colourUpdated, func(s Sample) int { return s.Updated }},
	} {
		xys := plotter.XYs{{X: 0, Y: 0}}
		for _, s := range r.Series {
			xys = append(xys, plotter.XY{X: ta.x(s.At), Y: float64(series.value(s))})
			maxY = math.Max(maxY, float64(series.value(s)))
		}
		p.Add(line(xys, series.colour, nil, plotter.NoStep))
	}
	ta.apply(p, r)
	p.Y.Min, p.Y.Max = 0, math.Max(maxY, 1)
	err := renderSVG(p, &c, fullWidth, fullHeight)
	return c, err
}

// rate is a per-minute rate from a cumulative counter: one point at the
// end of each sample's interval, the counters being zero when the run
// began.
func rate(ta timeAxis, series []Sample, counter func(Sample) int64, scale float64) plotter.XYs {
	var xys plotter.XYs
	prevAt, prev := 0.0, int64(0)
	for _, s := range series {
		if dt := s.At - prevAt; dt > 0 {
			y := float64(counter(s)-prev) * 60 / dt / scale
			if len(xys) == 0 {
				xys = append(xys, plotter.XY{X: ta.x(prevAt), Y: y})
			}
			xys = append(xys, plotter.XY{X: ta.x(s.At), Y: y})
		}
		prevAt, prev = s.At, counter(s)
	}
	return xys
}

func requestsChart(r *Report) (chart, error) {
	return rateChart(r, chart{ID: "requests", Title: "Requests per minute",
		Caption: "HTTP requests the gateway served in each minute of simulated time."},
		colourRequests, "requests/min", func(s Sample) int64 { return s.Requests }, 1, "The gateway served no request.")
}

func bytesChart(r *Report) (chart, error) {
	return rateChart(r, chart{ID: "bytes", Title: "MB per minute to devices",
		Caption: "Bytes the devices received from the gateway in each minute, in megabytes (10⁶ bytes)."},
		colourBytes, "MB/min", func(s Sample) int64 { return s.BytesReceived }, 1e6, "No byte went to the devices.")
}

// rateChart draws a per-minute rate of a cumulative counter, divided by
// scale and labelled unit; empty says why when it stays at zero.
func rateChart(r *Report, c chart, colour color.RGBA, unit string, counter func(Sample) int64, scale float64, empty string) (chart, error) {
	c.Legend = []legendEntry{entry(unit, colour)}
	xys := rate(timeAxisOf(r), r.Series, counter, scale)
	if !anyAbove(xys, 0) {
		c.Empty = empty
		return c, nil
	}
	p := newPlot("", unit)
	p.Add(line(xys, colour, tint(colour, 0.8), plotter.PreStep))
	timeAxisOf(r).apply(p, r)
	p.Y.Min = 0
	err := renderSVG(p, &c, halfWidth, halfHeight)
	return c, err
}

func openChart(r *Report) (chart, error) {
	c := chart{ID: "open", Title: "Open connections",
		Caption: fmt.Sprintf("Connections open to the gateway at each minute of simulated time; the peak, between samples too, was %s.", formatCount(r.Gateway.PeakConnections)),
		Legend:  []legendEntry{entry("open connections", colourOpen)}}
	ta := timeAxisOf(r)
	xys := plotter.XYs{{X: 0, Y: 0}}
	for _, s := range r.Series {
		xys = append(xys, plotter.XY{X: ta.x(s.At), Y: float64(s.Open)})
	}
	if !anyAbove(xys, 0) {
		c.Empty = "No connection was open at any sample."
		if r.Gateway.PeakConnections > 0 {
			c.Empty = fmt.Sprintf("No connection was open at any sample (the peak between samples was %s).", formatCount(r.Gateway.PeakConnections))
		}
		return c, nil
	}
	p := newPlot("", "connections")
	p.Y.Tick.Marker = integerTicks{}
	p.Add(line(xys, colourOpen, tint(colourOpen, 0.8), plotter.NoStep))
	ta.apply(p, r)
	p.Y.Min = 0
	p.Y.Max = math.Max(p.Y.Max, 1)
	err := renderSVG(p, &c, fullWidth, halfHeight)
	return c, err
}

func timeToUpdateChart(r *Report) (chart, error) {
	c := chart{ID: "time-to-update", Title: "Time to update",
		Caption: "Devices by the time from the version's publication to their confirming it.",
		Legend:  []legendEntry{entry("devices", colourTimeToUpd)}}
	return histogramChart(c, "time_to_update", r.TimeToUpdate, colourTimeToUpd)
}

func updateDurationChart(r *Report) (chart, error) {
	c := chart{ID: "update-duration", Title: "Update duration",
		Caption: "Devices by the time from their first downloaded byte to their confirming the version.",
		Legend:  []legendEntry{entry("devices", colourDuration)}}
	return histogramChart(c, "update_duration", r.UpdateDuration, colourDuration)
}

// histogramChart draws one bar per bucket of d, labelled by the bucket's
// upper bound.
func histogramChart(c chart, name string, d Distribution, colour color.RGBA) (chart, error) {
	if d.Count == 0 || len(d.Histogram) == 0 {
		c.Empty = "No device updated, so there is nothing to show."
		return c, nil
	}
	if len(d.Histogram) != len(d.Bounds)+1 {
		return c, fmt.Errorf("fleetrun: %s histogram has %d buckets for %d bounds, want one more bucket than bounds", name, len(d.Histogram), len(d.Bounds))
	}
	labels := make([]string, len(d.Histogram))
	values := make(plotter.Values, len(d.Histogram))
	for i, n := range d.Histogram {
		values[i] = float64(n)
		if i < len(d.Bounds) {
			labels[i] = "≤" + shortDuration(d.Bounds[i])
		} else {
			labels[i] = ">" + shortDuration(d.Bounds[i-1])
		}
	}
	p := newPlot("", "devices")
	p.Y.Tick.Marker = integerTicks{}
	p.X.Tick.Label.Font.Size = vg.Points(9)
	bars, err := plotter.NewBarChart(values, vg.Points(22))
	if err != nil {
		return c, err
	}
	bars.Color = colour
	bars.LineStyle.Width = 0
	p.Add(bars)
	p.NominalX(labels...)
	p.Y.Min = 0
	p.Y.Max = math.Max(p.Y.Max, 1)
	err = renderSVG(p, &c, halfWidth, halfHeight)
	return c, err
}

// cohortsChart stacks each cohort's devices by outcome, one horizontal bar
// a cohort, the first cohort on top.
func cohortsChart(r *Report) (chart, error) {
	kinds := []struct {
		label  string
		colour color.RGBA
		n      func(Outcomes) int
	}{
		{"updated", colourUpdated, func(o Outcomes) int { return o.Updated }},
		{"reverted", colourReverted, func(o Outcomes) int { return o.Reverted }},
		{"still old", colourStillOld, func(o Outcomes) int { return o.StillOld }},
		{"failed", colourFailed, func(o Outcomes) int { return o.Failed }},
		{"bricked", colourBricked, func(o Outcomes) int { return o.Bricked }},
	}
	c := chart{ID: "cohorts", Title: "Outcomes by cohort", Caption: "Each cohort's devices by how they ended the run."}
	for _, k := range kinds {
		c.Legend = append(c.Legend, entry(k.label, k.colour))
	}
	devices := 0
	for _, co := range r.Cohorts {
		devices += co.Devices
	}
	if devices == 0 {
		c.Empty = "The fleet had no device."
		return c, nil
	}
	n := len(r.Cohorts)
	names := make([]string, n)
	for i, co := range r.Cohorts {
		names[n-1-i] = cohortName(co, i)
	}
	p := newPlot("devices", "")
	p.X.Tick.Marker = integerTicks{}
	height := vg.Inch + vg.Length(n)*0.45*vg.Inch
	barWidth := 0.3 * vg.Inch
	var below *plotter.BarChart
	for _, k := range kinds {
		values := make(plotter.Values, n)
		for i, co := range r.Cohorts {
			values[n-1-i] = float64(k.n(co.Outcomes))
		}
		bars, err := plotter.NewBarChart(values, barWidth)
		if err != nil {
			return c, err
		}
		bars.Horizontal = true
		bars.Color = k.colour
		bars.LineStyle.Width = 0
		if below != nil {
			bars.StackOn(below)
		}
		p.Add(bars)
		below = bars
	}
	p.NominalY(names...)
	p.X.Min = 0
	p.X.Max = math.Max(p.X.Max, 1)
	err := renderSVG(p, &c, fullWidth, height)
	return c, err
}

// cohortName is a cohort's label: its name, or what it is when unnamed.
func cohortName(co CohortOutcomes, i int) string {
	if co.Name != "" {
		return co.Name
	}
	return fmt.Sprintf("#%d %s/%s", i+1, co.Board, co.Link)
}

func anyAbove(xys plotter.XYs, v float64) bool {
	for _, p := range xys {
		if p.Y > v {
			return true
		}
	}
	return false
}

func line(xys plotter.XYs, colour color.Color, fill color.Color, step plotter.StepKind) *plotter.Line {
	l := &plotter.Line{XYs: xys, StepStyle: step, FillColor: fill}
	l.LineStyle = draw.LineStyle{Color: colour, Width: vg.Points(2)}
	return l
}

var sans = font.Font{Typeface: "Liberation", Variant: "Sans"}

// newPlot is a plot in the page's style: sans-serif text, grey axes, a
// light grid, no title (the page's heading is the title).
func newPlot(xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(sans, 11)
		a.Label.TextStyle.Color = colourAxis
		a.Tick.Label.Font = font.From(sans, 10)
		a.Tick.Label.Color = colourAxis
		a.LineStyle.Color = colourAxis
		a.Tick.LineStyle.Color = colourAxis
	}
	p.X.Label.Text, p.Y.Label.Text = xLabel, yLabel
	p.Legend.TextStyle.Font = font.From(sans, 10)
	g := plotter.NewGrid()
	g.Vertical.Color, g.Horizontal.Color = colourGrid, colourGrid
	p.Add(g)
	return p
}

// renderSVG renders p into c.SVG as an inline <svg> element: the XML prolog
// and generator comment go, and the element gets an accessible name.
func renderSVG(p *plot.Plot, c *chart, w, h vg.Length) error {
	canvas := vgsvg.New(w, h)
	p.Draw(draw.New(canvas))
	var b bytes.Buffer
	if _, err := canvas.WriteTo(&b); err != nil {
		return err
	}
	svg := b.String()
	i := strings.Index(svg, "<svg")
	if i < 0 {
		return fmt.Errorf("fleetrun: the %s chart has no <svg> element", c.ID)
	}
	// Text inside comes from the plot, escaped by vgsvg with
	// html.EscapeString, so the element is safe to inline as it is.
	c.SVG = template.HTML(`<svg role="img" aria-label="` + template.HTMLEscapeString(c.Title) + `"` + svg[i+len("<svg"):])
	return nil
}

// integerTicks are the default ticks without fractional labels: the axis
// counts devices or connections.
type integerTicks struct{}

func (integerTicks) Ticks(min, max float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(min, max)
	out := ticks[:0]
	for _, t := range ticks {
		if t.Value != math.Trunc(t.Value) {
			if t.Label == "" {
				continue
			}
			t.Label = ""
		}
		out = append(out, t)
	}
	return out
}

// shortDuration labels a histogram bound: 60 is 1m, 7200 is 2h.
func shortDuration(s float64) string {
	switch {
	case s >= 3600 && math.Mod(s, 3600) == 0:
		return strconv.FormatFloat(s/3600, 'f', -1, 64) + "h"
	case s >= 60 && math.Mod(s, 60) == 0:
		return strconv.FormatFloat(s/60, 'f', -1, 64) + "m"
	}
	return strconv.FormatFloat(s, 'f', -1, 64) + "s"
}

// formatSeconds is a duration for a reader: 850ms, 12.3s, 4m12s, 1h2m5s.
func formatSeconds(s float64) string {
	if math.IsNaN(s) || math.IsInf(s, 0) {
		return strconv.FormatFloat(s, 'f', -1, 64)
	}
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

// thresholdValue is the value an expectation was checked against, in the
// metric's unit: seconds for the trends, a share for the rate, else a
// number (the metrics are those of world.metrics).
func thresholdValue(t ThresholdResult) string {
	if t.Error != "" && t.Value == 0 {
		return "–"
	}
	switch t.Metric {
	case "time_to_update", "update_duration":
		return formatSeconds(t.Value)
	case "updated":
		return strings.TrimSuffix(strconv.FormatFloat(100*t.Value, 'f', 1, 64), ".0") + "%"
	}
	if t.Value == math.Trunc(t.Value) && math.Abs(t.Value) < 1e15 {
		return formatCount(int64(t.Value))
	}
	return strconv.FormatFloat(t.Value, 'g', 6, 64)
}

// formatCount writes a whole number with thousands separators.
func formatCount(v any) string {
	var n int64
	switch v := v.(type) {
	case int:
		n = int64(v)
	case int64:
		n = v
	case uint32:
		n = int64(v)
	case uint64:
		return groupDigits(strconv.FormatUint(v, 10))
	default:
		return fmt.Sprint(v)
	}
	if n < 0 {
		return "-" + groupDigits(strconv.FormatInt(-n, 10))
	}
	return groupDigits(strconv.FormatInt(n, 10))
}

func groupDigits(s string) string {
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// formatBytes is a byte count in decimal units, with the exact count when
// rounded: "16.4 kB (16,384 bytes)".
func formatBytes(n int64) string {
	units := []string{"kB", "MB", "GB", "TB"}
	if n < 1000 {
		return formatCount(n) + " bytes"
	}
	v, u := float64(n), ""
	for _, unit := range units {
		if v < 1000 {
			break
		}
		v, u = v/1000, unit
	}
	return fmt.Sprintf("%.1f %s (%s bytes)", v, u, formatCount(n))
}
