package image

import "testing"

func TestParseVersion(t *testing.T) {
	ok := []struct {
		in   string
		want Version
	}{
		{"0", Version{}},
		{"1", Version{Major: 1}},
		{"1.2", Version{Major: 1, Minor: 2}},
		{"1.2.3", Version{1, 2, 3, 0}},
		{"1.2.3+4", Version{1, 2, 3, 4}},
		{"255.255.65535+4294967295", Version{255, 255, 65535, 4294967295}},
		{"0.0.0+0", Version{}},
	}
	for _, c := range ok {
		got, err := ParseVersion(c.in)
		if err != nil || got != c.want {
			t.Errorf("ParseVersion(%q) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
		back, err := ParseVersion(got.String())
		if err != nil || back != got {
			t.Errorf("String round trip of %q: %q", c.in, got.String())
		}
	}
	for _, in := range []string{"", "1.", ".1", "1..2", "1.2.3.4", "1+2", "1.2+3", "01", "1.02", "256", "1.256",
		"1.2.65536", "1.2.3+4294967296", "1.2.3+", "-1", "+1", "1.2.3+-4", "a.b", "1.2.3 ", " 1", "1.2.3+4+5", "１"} {
		if v, err := ParseVersion(in); err == nil {
			t.Errorf("ParseVersion(%q) = %+v, want an error", in, v)
		}
	}
	if s := (Version{1, 2, 3, 4}).String(); s != "1.2.3+4" {
		t.Errorf("String = %q", s)
	}
}

func TestVersionCompare(t *testing.T) {
	cases := []struct {
		a, b      Version
		noBuild   int
		withBuild int
	}{
		{Version{1, 0, 0, 0}, Version{1, 0, 0, 0}, 0, 0},
		{Version{1, 0, 0, 5}, Version{1, 0, 0, 4}, 0, 1},
		{Version{1, 0, 0, 4}, Version{1, 0, 0, 5}, 0, -1},
		{Version{2, 0, 0, 0}, Version{1, 255, 65535, 9}, 1, 1},
		{Version{1, 1, 0, 0}, Version{1, 2, 0, 0}, -1, -1},
		{Version{1, 2, 256, 0}, Version{1, 2, 255, 9}, 1, 1},
		{Version{1, 2, 3, 0}, Version{1, 2, 4, 0}, -1, -1},
	}
	for _, c := range cases {
		if got := c.a.Compare(c.b, false); got != c.noBuild {
			t.Errorf("%v vs %v without build = %d, want %d", c.a, c.b, got, c.noBuild)
		}
		if got := c.a.Compare(c.b, true); got != c.withBuild {
			t.Errorf("%v vs %v with build = %d, want %d", c.a, c.b, got, c.withBuild)
		}
		if got := c.b.Compare(c.a, true); got != -c.withBuild {
			t.Errorf("%v vs %v with build (reversed) = %d", c.b, c.a, got)
		}
	}
}
