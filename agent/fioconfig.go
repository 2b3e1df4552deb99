package agent

import "strings"

// DeviceConfig is what the agent takes from the gateway's /config answer
// (fioconfig's files, foundries.md §1.5).
type DeviceConfig struct {
	// Tag is [pacman] tags from z-50-fioctl.toml ("" when absent).
	Tag string
	// PollInterval is polling_interval in seconds, as set (unclamped);
	// HasPollInterval says whether it was.
	PollInterval    int
	HasPollInterval bool
	// Settings holds other integer settings the application receives
	// (btn_polling_interval).
	Settings []Setting
	// Problems lists what was skipped and why, one line each, as aknano
	// logs it.
	Problems []string
}

// Setting is one application setting from /config.
type Setting struct {
	Name  string
	Value int
}

// maxFioctlTOML bounds z-50-fioctl.toml's value (aknano's 200-byte buffer).
const maxFioctlTOML = 200

// ParseDeviceConfig reads a /config body as aktualizr-nano does
// (parse_config): the JSON must be valid; z-50-fioctl.toml's Value, as
// written between its quotes and shorter than 200 bytes, is unescaped with
// aknano's own rules and read as INI; polling_interval and
// btn_polling_interval are read with sscanf("%d"). It never fails: what
// cannot be read is skipped and listed in Problems.
func ParseDeviceConfig(body []byte) DeviceConfig {
	var c DeviceConfig
	if !validJSON(body) {
		c.Problems = append(c.Problems, "invalid config JSON")
		return c
	}
	if v, ok := jsonLookup(body, "z-50-fioctl.toml", "Value"); ok {
		raw := jsonText(v)
		if len(raw) < maxFioctlTOML {
			c.Tag = fioctlTag(unescapeAknano(raw))
		} else {
			c.Problems = append(c.Problems, "z-50-fioctl.toml too big, skipped")
		}
	}
	if v, ok := jsonLookup(body, "polling_interval", "Value"); ok {
		if n, ok := scanInt(jsonText(v)); ok {
			c.PollInterval, c.HasPollInterval = n, true
		} else {
			c.Problems = append(c.Problems, "invalid polling_interval")
		}
	}
	if v, ok := jsonLookup(body, "btn_polling_interval", "Value"); ok {
		if n, ok := scanInt(jsonText(v)); ok {
			c.Settings = append(c.Settings, Setting{Name: "btn_polling_interval", Value: n})
		} else {
			c.Problems = append(c.Problems, "invalid btn_polling_interval")
		}
	}
	return c
}

// unescapeAknano is aknano's replace_escaped_chars: \n, \r, \" and \\ are
// decoded; any other escape is dropped with the character after it; a
// backslash at the very end is kept.
func unescapeAknano(s []byte) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i < len(s)-1 {
			switch s[i+1] {
			case 'n':
				b.WriteByte('\n')
			case 'r':
				b.WriteByte('\r')
			case '"':
				b.WriteByte('"')
			case '\\':
				b.WriteByte('\\')
			}
			i++
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// fioctlTag reads [pacman] tags from the TOML as aknano does, with inih
// and its handler: the value's first and last characters (the quotes) are
// dropped, and at most MaxTagLength characters kept. The last tags line of
// the section wins. It returns "" when there is none.
func fioctlTag(toml string) string {
	tag := ""
	iniParse(toml, func(section, name, value string) {
		if section != "pacman" || name != "tags" || len(value) == 0 {
			return
		}
		// strncpy(new_tag, value + 1, strnlen(value + 1, 40) - 1)
		inner := value[1:]
		n := min(len(inner), MaxTagLength+1) - 1
		if n < 0 {
			n = 0
		}
		tag = inner[:n]
	})
	return tag
}

// iniParse is the part of inih (ini_parse_string, default build options)
// that aknano relies on: "[section]" lines, "name = value" or
// "name : value" pairs with surrounding white space stripped, ';' and '#'
// comment lines, and inline ';' comments preceded by white space. Lines are
// cut at 200 bytes (INI_MAX_LINE); continuation lines are not supported.
func iniParse(s string, fn func(section, name, value string)) {
	section := ""
	for _, line := range strings.Split(s, "\n") {
		if len(line) > 199 {
			line = line[:199]
		}
		line = strings.TrimRight(line, "\r")
		line = strings.TrimSpace(line)
		if line == "" || line[0] == ';' || line[0] == '#' {
			continue
		}
		if line[0] == '[' {
			if end := strings.IndexByte(line, ']'); end > 0 {
				section = line[1:end]
			}
			continue
		}
		line = stripInlineComment(line)
		i := strings.IndexAny(line, "=:")
		if i < 0 {
			continue
		}
		fn(section, strings.TrimSpace(line[:i]), strings.TrimSpace(line[i+1:]))
	}
}

func stripInlineComment(line string) string {
	for i := 1; i < len(line); i++ {
		if line[i] == ';' && (line[i-1] == ' ' || line[i-1] == '\t') {
			return line[:i]
		}
	}
	return line
}
