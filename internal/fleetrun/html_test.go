package fleetrun

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/fleetsim/fleetsim/scenarios"
)

// chartIDs are the page's charts, in page order.
var chartIDs = []string{"rollout", "cohorts", "requests", "bytes", "open", "time-to-update", "update-duration"}

func renderHTML(t *testing.T, r *Report) []byte {
	t.Helper()
	page, err := r.HTML()
	if err != nil {
		t.Fatal(err)
	}
	return page
}

func parseHTML(t *testing.T, page []byte) *html.Node {
	t.Helper()
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatalf("report.html does not parse: %v", err)
	}
	return doc
}

// find returns the elements under n for which match holds, in document
// order.
func find(n *html.Node, match func(*html.Node) bool) []*html.Node {
	var out []*html.Node
	for d := range n.Descendants() {
		if d.Type == html.ElementNode && match(d) {
			out = append(out, d)
		}
	}
	return out
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == key {
			return a.Val
		}
	}
	return ""
}

func byID(doc *html.Node, id string) *html.Node {
	if ns := find(doc, func(n *html.Node) bool { return attr(n, "id") == id }); len(ns) == 1 {
		return ns[0]
	}
	return nil
}

func text(n *html.Node) string {
	var b strings.Builder
	for d := range n.Descendants() {
		if d.Type == html.TextNode {
			b.WriteString(d.Data)
			b.WriteByte(' ')
		}
	}
	return strings.Join(strings.Fields(b.String()), " ")
}

func isSVG(n *html.Node) bool { return n.Namespace == "svg" && n.Data == "svg" }

// chartsDrawn maps each chart's id to whether it holds an SVG, and checks
// that a chart without one says why in a sentence.
func chartsDrawn(t *testing.T, doc *html.Node) map[string]bool {
	t.Helper()
	drawn := map[string]bool{}
	for _, id := range chartIDs {
		fig := byID(doc, "chart-"+id)
		if fig == nil || fig.DataAtom != atom.Figure {
			t.Fatalf("no figure chart-%s", id)
		}
		svgs := find(fig, isSVG)
		drawn[id] = len(svgs) == 1
		if len(svgs) > 1 {
			t.Errorf("chart %s has %d <svg> elements, want 1", id, len(svgs))
		}
		if len(svgs) == 0 {
			empty := find(fig, func(n *html.Node) bool { return n.DataAtom == atom.P && attr(n, "class") == "empty" })
			if len(empty) != 1 || !strings.HasSuffix(text(empty[0]), ".") {
				t.Errorf("chart %s has neither an SVG nor a sentence saying why", id)
			}
		}
	}
	return drawn
}

// svgNamespaces are the only URLs report.html may hold: names, not
// addresses, which no browser fetches.
var svgNamespaces = regexp.MustCompile(`^xmlns(:xlink)?="(http://www\.w3\.org/2000/svg|http://www\.w3\.org/1999/xlink)"`)

// checkOffline fails for anything that would make a browser reach out:
// URLs other than the SVG namespace names, scripts, style sheets, fonts or
// images by reference.
func checkOffline(t *testing.T, page []byte) {
	t.Helper()
	s := string(page)
	for _, m := range regexp.MustCompile(`(?i)https?://`).FindAllStringIndex(s, -1) {
		attrStart := strings.LastIndexAny(s[:m[0]], " \t\n") + 1
		if attrStart == 0 || !svgNamespaces.MatchString(s[attrStart:]) {
			t.Errorf("an address in report.html: %q", s[max(0, m[0]-40):min(len(s), m[1]+40)])
		}
	}
	for _, bad := range []string{"<script", "<link", "<img", "<iframe", "@import", "@font-face", "src=", "href=", "url("} {
		if i := strings.Index(strings.ToLower(s), bad); i >= 0 {
			t.Errorf("report.html holds %q: %q", bad, s[max(0, i-40):min(len(s), i+60)])
		}
	}
	if n := strings.Count(s, "xmlns=\"http://www.w3.org/2000/svg\""); n != strings.Count(s, "<svg") {
		t.Errorf("%d <svg> elements, %d with the SVG namespace", strings.Count(s, "<svg"), n)
	}
}

func TestReportHTML(t *testing.T) {
	s := small(6)
	s.Name = "<script>alert(1)</script>"
	s.Description = "A fleet of <b>six</b> & a \"quoted\" word.\nSecond line."
	s.Expect["bricked"] = append(s.Expect["bricked"], "count>0")
	_, r := runJSON(t, s)
	page := renderHTML(t, r)
	doc := parseHTML(t, page)

	// The name and description are text, not markup, wherever they appear.
	if scripts := find(doc, func(n *html.Node) bool { return n.DataAtom == atom.Script }); len(scripts) != 0 {
		t.Errorf("the page has %d <script> elements; the scenario name was not escaped", len(scripts))
	}
	h1 := find(doc, func(n *html.Node) bool { return n.DataAtom == atom.H1 })
	if len(h1) != 1 || text(h1[0]) != s.Name {
		t.Errorf("h1 %q, want the scenario name as text", text(h1[0]))
	}
	if title := find(doc, func(n *html.Node) bool { return n.DataAtom == atom.Title }); len(title) != 1 || text(title[0]) != "fleetsim report: "+s.Name {
		t.Errorf("title is not the escaped scenario name")
	}
	if bold := find(doc, func(n *html.Node) bool { return n.DataAtom == atom.B }); len(bold) != 0 {
		t.Errorf("the description's <b> became an element")
	}
	if !bytes.Contains(page, []byte("&lt;script&gt;alert(1)&lt;/script&gt;")) {
		t.Errorf("the escaped scenario name is not in the page")
	}

	// Header facts.
	facts := text(find(doc, func(n *html.Node) bool { return n.DataAtom == atom.Dl })[0])
	for _, want := range []string{fmt.Sprintf("Seed %d", r.Seed), "Devices 6", "Simulated time " + formatSeconds(r.Simulated), "v1001 at 5m0s"} {
		if !strings.Contains(facts, want) {
			t.Errorf("header %q lacks %q", facts, want)
		}
	}

	// One SVG a chart: every chart has data in a run that updated, except
	// perhaps open connections, sampled once a minute while a poll on
	// ethernet takes milliseconds.
	want := map[string]bool{}
	for _, id := range chartIDs {
		want[id] = true
	}
	want["open"] = slices.ContainsFunc(r.Series, func(s Sample) bool { return s.Open > 0 })
	drawn, svgs := chartsDrawn(t, doc), 0
	for _, id := range chartIDs {
		if drawn[id] != want[id] {
			t.Errorf("chart %s drawn=%v, want %v", id, drawn[id], want[id])
		}
		if want[id] {
			svgs++
		}
	}
	if n := len(find(doc, isSVG)); n != svgs {
		t.Errorf("%d <svg> elements, want %d", n, svgs)
	}
	checkOffline(t, page)

	// The thresholds table: one row each, in report order, ✓ or ✗.
	rows := find(byID(doc, "thresholds"), func(n *html.Node) bool { return n.DataAtom == atom.Tr && n.Parent.DataAtom == atom.Tbody })
	if len(rows) != len(r.Thresholds) || len(rows) != 4 {
		t.Fatalf("%d threshold rows, want %d", len(rows), len(r.Thresholds))
	}
	wantRows := []string{"✓ bricked count==0 0", "✗ bricked count>0 0", "✓ time_to_update max<15m", "✓ updated rate==1 100%"}
	for i, row := range rows {
		if got := text(row); !strings.HasPrefix(got, wantRows[i]) {
			t.Errorf("threshold row %d: %q, want it to start %q", i, got, wantRows[i])
		}
	}
	if v := text(find(byID(doc, "thresholds"), func(n *html.Node) bool { return attr(n, "class") == "verdict bad" })[0]); v != "✗ 3 of 4 thresholds passed." {
		t.Errorf("verdict %q", v)
	}

	// The tables of report.json.
	for _, want := range []struct{ id, text string }{
		{"time-to-fraction", "to 50% updated"},
		{"cohorts", "rt1060 ethernet 6 6 0 0 0 0"},
		{"cohorts", "fleet 6 6 0 0 0 0"},
		{"waves", "no waves"},
		{"gateway", fmt.Sprintf("Requests %s", formatCount(r.Gateway.Requests))},
		{"faults", "Power cuts armed 0"},
		{"distributions", "time to update 6"},
	} {
		if el := byID(doc, want.id); el == nil || !strings.Contains(text(el), want.text) {
			t.Errorf("#%s does not say %q", want.id, want.text)
		}
	}
}

func TestReportHTMLIsDeterministic(t *testing.T) {
	s := small(5)
	s.Faults = []scenarios.Fault{{Kind: "power-cut", Phase: "download", Rate: 0.5}}
	_, r := runJSON(t, s)
	a, b := renderHTML(t, r), renderHTML(t, r)
	if !bytes.Equal(a, b) {
		t.Fatal("two renders of one report differ")
	}
	// A second run of the same seed renders the same bytes too.
	_, r2 := runJSON(t, s)
	if c := renderHTML(t, r2); !bytes.Equal(a, c) {
		t.Fatal("two runs with the same seed render different pages")
	}
}

func TestReportHTMLWithoutData(t *testing.T) {
	t.Run("zero report", func(t *testing.T) {
		page := renderHTML(t, &Report{Scenario: "nothing"})
		doc := parseHTML(t, page)
		for id, ok := range chartsDrawn(t, doc) {
			if ok {
				t.Errorf("chart %s drawn for an empty report", id)
			}
		}
		if bytes.Contains(page, []byte("<svg")) {
			t.Error("an empty report has an SVG")
		}
		checkOffline(t, page)
		for _, want := range []struct{ id, text string }{
			{"thresholds", "The scenario sets no thresholds."},
			{"time-to-fraction", "not reached to 50% updated"},
			{"cohorts", "no cohort"},
		} {
			if el := byID(doc, want.id); el == nil || !strings.Contains(text(el), want.text) {
				t.Errorf("#%s does not say %q", want.id, want.text)
			}
		}
	})
	t.Run("never published", func(t *testing.T) {
		// The devices poll, so the gateway is busy, but no version comes
		// out before the run ends: nothing to chart about updates.
		s := small(3)
		s.Duration = scenarios.Duration(20 * time.Minute)
		s.Rollout.At = scenarios.Duration(time.Hour)
		s.Expect = nil
		_, r := runJSON(t, s)
		if r.Outcomes.StillOld != 3 || len(r.Published) != 0 {
			t.Fatalf("outcomes %+v published %v: want nothing published and 3 still old", r.Outcomes, r.Published)
		}
		doc := parseHTML(t, renderHTML(t, r))
		drawn := chartsDrawn(t, doc)
		for id, want := range map[string]bool{
			"rollout": false, "time-to-update": false, "update-duration": false,
			"cohorts": true, "requests": true, "bytes": true,
		} {
			if drawn[id] != want {
				t.Errorf("chart %s drawn=%v, want %v", id, drawn[id], want)
			}
		}
		if got := text(byID(doc, "chart-rollout")); !strings.Contains(got, "No device downloaded, updated or bricked") {
			t.Errorf("rollout chart says %q", got)
		}
	})
}

func TestReportHTMLRejectsAMismatchedHistogram(t *testing.T) {
	r := &Report{Scenario: "bad", TimeToUpdate: Distribution{Count: 1, Bounds: []float64{60}, Histogram: []int{1}}}
	if _, err := r.HTML(); err == nil || !strings.Contains(err.Error(), "time_to_update histogram has 1 buckets for 1 bounds") {
		t.Fatalf("err %v, want the mismatch named", err)
	}
}

// screenshotScenario is a fleet with something in every chart: slow links
// so downloads span minutes, a cohort whose firmware fails its self-test so
// devices revert, and power cuts.
func screenshotScenario() *scenarios.Scenario {
	s := small(0)
	s.Name = "screenshot"
	s.Description = "Two cohorts on slow links; one cohort's firmware fails its self-test."
	s.Duration = scenarios.Duration(3 * time.Hour)
	s.Fleet = []scenarios.Cohort{
		{Name: "meters", Count: 16, Board: "nrf52840", Link: "nb-iot", Poll: scenarios.Duration(2 * time.Minute), Start: scenarios.Duration(10 * time.Minute)},
		{Name: "gateways", Count: 6, Board: "rt1060", Link: "lte-m", Poll: scenarios.Duration(time.Minute), Start: scenarios.Duration(5 * time.Minute),
			Firmware: map[string]string{"1001": "fails-self-test"}},
	}
	s.Rollout.ImageSize = 160 << 10
	s.Faults = []scenarios.Fault{{Kind: "power-cut", Phase: "download", Rate: 0.3}}
	s.Defaults()
	return s
}

// chromiumWanted says whether the screenshot test must run: chromium is
// installed, or FLEETSIM_CHROMIUM=1 asks for it (the script then installs
// it, and failing to is a failure, not a skip).
func chromiumWanted() (bool, string) {
	if os.Getenv("FLEETSIM_CHROMIUM") == "1" {
		return true, ""
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if _, err := exec.LookPath(name); err == nil {
			return true, ""
		}
	}
	return false, "chromium is not installed; FLEETSIM_CHROMIUM=1 (make report-check) installs it and runs this test"
}

// A person opens report.html: headless Chromium draws it, and every chart
// must show up in the picture in its own colour, in page order, spanning a
// chart's width. FLEETSIM_SCREENSHOT_OUT=DIR keeps report.html and
// report.png there to look at.
func TestReportScreenshot(t *testing.T) {
	if ok, why := chromiumWanted(); !ok {
		t.Skip(why)
	}
	_, r := runJSON(t, screenshotScenario())
	page := renderHTML(t, r)
	if drawn := chartsDrawn(t, parseHTML(t, page)); len(drawn) != len(chartIDs) {
		t.Fatal("not every chart was drawn")
	} else {
		for id, ok := range drawn {
			if !ok {
				t.Fatalf("chart %s was not drawn: the scenario must give every chart data", id)
			}
		}
	}
	dir := os.Getenv("FLEETSIM_SCREENSHOT_OUT")
	if dir == "" {
		dir = t.TempDir()
	}
	htmlPath, pngPath := filepath.Join(dir, "report.html"), filepath.Join(dir, "report.png")
	if err := os.WriteFile(htmlPath, page, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join("..", "..", "scripts", "report-screenshot.sh"), htmlPath, pngPath, "1200,3000")
	out, err := cmd.CombinedOutput()
	if err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 3 {
			t.Fatalf("FLEETSIM_CHROMIUM=1 asked for the screenshot test, but there is no chromium: %s", out)
		}
		t.Fatalf("report-screenshot.sh: %v\n%s", err, out)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 1200 || b.Dy() != 3000 {
		t.Fatalf("screenshot is %v, want 1200×3000", b)
	}

	// Each chart by its own colour, in the part of the page where it
	// belongs: below the chart before it, on its side of a pair. The cohort
	// bars share the outcome colours with the rollout curve, so they are
	// the green between the rollout curve and the gateway charts.
	height := img.Bounds().Max.Y
	measure := func(what string, c color.RGBA, top, bottom int) image.Rectangle {
		reg := countColour(img, c, top, bottom)
		t.Logf("%-22s #%02x%02x%02x: %6d pixels in %v", what, c.R, c.G, c.B, reg.n, reg.box)
		// A line across a chart or a bar is hundreds of pixels; a legend
		// swatch is 12×12.
		if reg.n < 600 {
			t.Errorf("the %s chart is not in the screenshot: %d pixels of its colour in rows %d to %d", what, reg.n, top, bottom)
		}
		return reg.box
	}
	wide := func(what string, box image.Rectangle) {
		if box.Dx() < 400 {
			t.Errorf("the %s line spans %d pixels, want one across its chart", what, box.Dx())
		}
	}
	side := func(what string, box image.Rectangle, left bool) {
		if mid := img.Bounds().Dx() / 2; left && box.Max.X > mid || !left && box.Min.X < mid {
			t.Errorf("the %s chart is at %v, want it in the %s half", what, box, map[bool]string{true: "left", false: "right"}[left])
		}
	}
	// Devices download for minutes of a three-hour run: that line is a
	// few bumps, not one across the chart.
	rollout := measure("rollout: downloading", colourDownloading, 0, height)
	wide("updated", measure("rollout: updated", colourUpdated, 0, rollout.Max.Y+1))
	requests := measure("requests per minute", colourRequests, rollout.Max.Y, height)
	wide("requests per minute", requests)
	side("requests per minute", requests, true)
	bytesPerMin := measure("MB per minute", colourBytes, rollout.Max.Y, height)
	side("MB per minute", bytesPerMin, false)
	cohorts := measure("cohorts: updated", colourUpdated, rollout.Max.Y+10, requests.Min.Y)
	wide("cohorts' updated bar", cohorts)
	if r.Outcomes.Reverted > 0 {
		measure("cohorts: reverted", colourReverted, rollout.Max.Y+10, requests.Min.Y)
	}
	open := measure("open connections", colourOpen, max(requests.Max.Y, bytesPerMin.Max.Y), height)
	wide("open connections", open)
	side("time to update", measure("time to update", colourTimeToUpd, open.Max.Y, height), true)
	side("update duration", measure("update duration", colourDuration, open.Max.Y, height), false)
	if t.Failed() {
		t.Logf("screenshot: %s (keep it with FLEETSIM_SCREENSHOT_OUT=DIR)", pngPath)
	}
}

type colourRegion struct {
	n   int
	box image.Rectangle
}

// countColour counts the pixels within a small distance of c in rows
// [top, bottom), and bounds them.
func countColour(img image.Image, c color.RGBA, top, bottom int) colourRegion {
	const tolerance = 12
	near := func(a uint32, b uint8) bool {
		d := int(a>>8) - int(b)
		return d >= -tolerance && d <= tolerance
	}
	var reg colourRegion
	b := img.Bounds()
	for y := max(b.Min.Y, top); y < min(b.Max.Y, bottom); y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if near(r, c.R) && near(g, c.G) && near(bl, c.B) {
				p := image.Rect(x, y, x+1, y+1)
				if reg.n == 0 {
					reg.box = p
				} else {
					reg.box = reg.box.Union(p)
				}
				reg.n++
			}
		}
	}
	return reg
}
