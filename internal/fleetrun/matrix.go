package fleetrun

import (
	"bytes"
	"fmt"
	"html/template"

	"github.com/fleetsim/fleetsim/scenarios"
)

// MatrixReport compares the variants of a scenario's matrix side by side
// (matrix.json): the capacity-planning view.
type MatrixReport struct {
	Scenario string       `json:"scenario"`
	Seed     uint64       `json:"seed"`
	Params   []string     `json:"params"`
	Variants []MatrixCell `json:"variants"`
}

// MatrixCell is one variant's parameters and headline figures; its full
// report is in Dir.
type MatrixCell struct {
	Label  string   `json:"label"`
	Values []string `json:"values"`
	Dir    string   `json:"dir"`
	// Passed says every expectation held.
	Passed          bool     `json:"passed"`
	Devices         int      `json:"devices"`
	Updated         float64  `json:"updated_rate"`
	Bricked         int      `json:"bricked"`
	TimeTo90        *float64 `json:"time_to_90_s"`
	UpdateP95       float64  `json:"time_to_update_p95_s"`
	Requests        int64    `json:"requests"`
	PeakConnections int64    `json:"peak_connections"`
	Utilization     float64  `json:"gateway_utilization"`
	MaxWaitMs       float64  `json:"max_queue_wait_ms"`
}

// NewMatrixReport starts the comparison of s's matrix.
func NewMatrixReport(s *scenarios.Scenario) *MatrixReport {
	m := &MatrixReport{Scenario: s.Name, Seed: s.Seed}
	for _, p := range s.Matrix {
		m.Params = append(m.Params, p.Path)
	}
	return m
}

// Add records variant v's report r, kept in directory dir.
func (m *MatrixReport) Add(v scenarios.Variant, dir string, r *Report) {
	c := MatrixCell{
		Label: v.Label, Dir: dir, Passed: !r.Failed(), Devices: r.Devices, Bricked: r.Outcomes.Bricked,
		TimeTo90: r.TimeToFraction.P90, UpdateP95: r.TimeToUpdate.P95, Requests: r.Gateway.Requests,
		PeakConnections: r.Gateway.PeakConnections, Utilization: r.Gateway.Utilization, MaxWaitMs: r.Gateway.MaxWaitMs,
	}
	for _, p := range v.Params {
		c.Values = append(c.Values, p.Value)
	}
	if r.Devices > 0 {
		c.Updated = float64(r.Outcomes.Updated) / float64(r.Devices)
	}
	m.Variants = append(m.Variants, c)
}

// Failed reports whether an expectation failed in any variant.
func (m *MatrixReport) Failed() bool {
	for _, c := range m.Variants {
		if !c.Passed {
			return true
		}
	}
	return false
}

// JSON is matrix.json.
func (m *MatrixReport) JSON() ([]byte, error) { return indentedJSON(m) }

var matrixPage = template.Must(template.New("matrix").Funcs(template.FuncMap{
	"pct":  func(f float64) string { return fmt.Sprintf("%.1f%%", 100*f) },
	"secs": formatSeconds,
	"opt": func(p *float64) string {
		if p == nil {
			return "–"
		}
		return formatSeconds(*p)
	},
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{{.Scenario}}: matrix</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;color:#1d2127;margin:2em auto;max-width:1200px;padding:0 1em}
table{border-collapse:collapse;width:100%}th,td{padding:.35em .6em;border-bottom:1px solid #dde1e6;text-align:right}
th{background:#f3f5f7}td.l,th.l{text-align:left}.bad{color:#b3261e;font-weight:600}.ok{color:#1a7f37}
</style></head><body>
<h1>{{.Scenario}}: matrix</h1>
<p>Seed {{.Seed}}. One row per combination of the matrix's values; each row's full report is in its directory.</p>
<table><thead><tr>{{range .Params}}<th class="l">{{.}}</th>{{end}}<th>expectations</th><th>devices</th><th>updated</th><th>bricked</th><th>time to 90%</th><th>p95 time to update</th><th>requests</th><th>peak connections</th><th>gateway CPU</th><th>max queue wait</th><th class="l">report</th></tr></thead>
<tbody>{{range .Variants}}<tr>{{range .Values}}<td class="l">{{.}}</td>{{end}}
<td>{{if .Passed}}<span class="ok">✓ held</span>{{else}}<span class="bad">✗ failed</span>{{end}}</td>
<td>{{.Devices}}</td><td>{{pct .Updated}}</td><td>{{.Bricked}}</td><td>{{opt .TimeTo90}}</td><td>{{secs .UpdateP95}}</td>
<td>{{.Requests}}</td><td>{{.PeakConnections}}</td><td>{{pct .Utilization}}</td><td>{{printf "%.1f ms" .MaxWaitMs}}</td>
<td class="l"><a href="{{.Dir}}/report.html">{{.Dir}}</a></td></tr>{{end}}</tbody></table>
</body></html>
`))

// HTML is matrix.html: the table of the variants, linking each report.
func (m *MatrixReport) HTML() ([]byte, error) {
	var b bytes.Buffer
	err := matrixPage.Execute(&b, m)
	return b.Bytes(), err
}
