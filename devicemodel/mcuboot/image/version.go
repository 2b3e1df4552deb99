package image

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Version is an image version (struct image_version): imgtool's
// MAJ.MIN.REV+BUILD.
type Version struct {
	Major    uint8
	Minor    uint8
	Revision uint16
	Build    uint32
}

// ParseVersion parses a version the way imgtool's -v does: "1", "1.2",
// "1.2.3" or "1.2.3+4"; missing parts are zero, a build number needs a
// revision, and numbers have no sign and no leading zeros. Each part must
// fit its field (255, 255, 65535, 4294967295).
func ParseVersion(s string) (Version, error) {
	var v Version
	main, build, hasBuild := strings.Cut(s, "+")
	parts := strings.Split(main, ".")
	if len(parts) > 3 || (hasBuild && len(parts) != 3) {
		return v, fmt.Errorf("invalid version %q: want MAJ[.MIN[.REV[+BUILD]]]", s)
	}
	limits := []uint64{0xff, 0xff, 0xffff}
	var nums [4]uint64
	for i, p := range parts {
		n, err := parseVersionPart(p, limits[i])
		if err != nil {
			return v, fmt.Errorf("invalid version %q: %v", s, err)
		}
		nums[i] = n
	}
	if hasBuild {
		n, err := parseVersionPart(build, 0xffffffff)
		if err != nil {
			return v, fmt.Errorf("invalid version %q: %v", s, err)
		}
		nums[3] = n
	}
	return Version{Major: uint8(nums[0]), Minor: uint8(nums[1]), Revision: uint16(nums[2]), Build: uint32(nums[3])}, nil
}

func parseVersionPart(p string, limit uint64) (uint64, error) {
	if p == "" {
		return 0, fmt.Errorf("empty number")
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", p)
		}
	}
	if len(p) > 1 && p[0] == '0' {
		return 0, fmt.Errorf("%q has a leading zero", p)
	}
	n, err := strconv.ParseUint(p, 10, 64)
	if err != nil || n > limit {
		return 0, fmt.Errorf("%s is larger than %d", p, limit)
	}
	return n, nil
}

// String formats v as MAJ.MIN.REV+BUILD, the form ParseVersion reads back.
func (v Version) String() string {
	return fmt.Sprintf("%d.%d.%d+%d", v.Major, v.Minor, v.Revision, v.Build)
}

// Compare orders versions as MCUboot's downgrade prevention and dependency
// check do: major, minor, revision, and the build number only when withBuild
// (MCUBOOT_VERSION_CMP_USE_BUILD_NUMBER). It returns -1, 0 or +1.
func (v Version) Compare(o Version, withBuild bool) int {
	a := [4]uint64{uint64(v.Major), uint64(v.Minor), uint64(v.Revision), uint64(v.Build)}
	b := [4]uint64{uint64(o.Major), uint64(o.Minor), uint64(o.Revision), uint64(o.Build)}
	n := 3
	if withBuild {
		n = 4
	}
	for i := 0; i < n; i++ {
		switch {
		case a[i] < b[i]:
			return -1
		case a[i] > b[i]:
			return 1
		}
	}
	return 0
}

// put encodes v into the 8 bytes of b.
func (v Version) put(b []byte) {
	b[0] = v.Major
	b[1] = v.Minor
	binary.LittleEndian.PutUint16(b[2:], v.Revision)
	binary.LittleEndian.PutUint32(b[4:], v.Build)
}

// versionFrom decodes 8 bytes written by put.
func versionFrom(b []byte) Version {
	return Version{
		Major:    b[0],
		Minor:    b[1],
		Revision: binary.LittleEndian.Uint16(b[2:]),
		Build:    binary.LittleEndian.Uint32(b[4:]),
	}
}
