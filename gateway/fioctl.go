package gateway

import (
	"slices"
	"strings"
)

// fioctlFile is the configuration file fioctl writes for device settings
// such as the tag ("[pacman]\ntags = ..."). Foundries' gateway merges it
// across scopes section by section rather than file by file (foundries.md
// §3), so a device-wide [pacman] section and a factory-wide other section
// both reach the device.
const fioctlFile = "z-50-fioctl.toml"

// mergeFioctl merges the z-50-fioctl.toml texts of the factory, group and
// device scopes (widest first): a section of a narrower scope replaces the
// section of the same name of a wider one, whole. Sections are recognised by
// their "[name]" header lines and kept as written, keys before any header
// forming a section of their own, so no value is reinterpreted on the way:
// the text the device parses is the operator's. The result lists the
// headerless section first, then the others in the order they first
// appeared.
func mergeFioctl(texts []string) string {
	var order []string
	sections := map[string]string{}
	for _, text := range texts {
		for _, sec := range splitSections(text) {
			if _, seen := sections[sec.name]; !seen {
				order = append(order, sec.name)
			}
			sections[sec.name] = sec.body
		}
	}
	if i := slices.Index(order, ""); i > 0 {
		order = append([]string{""}, slices.Delete(order, i, i+1)...)
	}
	var b strings.Builder
	for _, name := range order {
		body := sections[name]
		if body == "" {
			continue
		}
		if b.Len() > 0 && !strings.HasSuffix(b.String(), "\n") {
			b.WriteByte('\n')
		}
		b.WriteString(body)
	}
	return b.String()
}

type tomlSection struct {
	name string // "" for the lines before the first header
	body string // the header line and the section's lines, as written
}

// splitSections cuts TOML text at its table header lines ("[name]", with
// optional spaces; "[[array]]" headers are kept inside the current section,
// as fioctl never writes them).
func splitSections(text string) []tomlSection {
	var out []tomlSection
	cur := tomlSection{}
	for line := range strings.SplitAfterSeq(text, "\n") {
		if name, ok := sectionHeader(line); ok {
			if cur.body != "" || cur.name != "" {
				out = append(out, cur)
			}
			cur = tomlSection{name: name}
		}
		cur.body += line
	}
	if cur.body != "" || cur.name != "" {
		out = append(out, cur)
	}
	return out
}

func sectionHeader(line string) (string, bool) {
	t := strings.TrimSpace(line)
	if len(t) < 3 || t[0] != '[' || t[1] == '[' {
		return "", false
	}
	end := strings.IndexByte(t, ']')
	if end < 0 {
		return "", false
	}
	if rest := strings.TrimSpace(t[end+1:]); rest != "" && rest[0] != '#' {
		return "", false
	}
	return strings.TrimSpace(t[1:end]), true
}
