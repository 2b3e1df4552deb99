package image

import (
	"bytes"
	"crypto"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// vectorSlotSize is the -S every imgtool vector was made with.
const vectorSlotSize = 0x20000

// manifestEntry mirrors testdata/imgtool/manifest.json, written by the
// tool that produced the vectors with MCUboot's imgtool.
type manifestEntry struct {
	File           string `json:"file"`
	FileSize       int64  `json:"file_size"`
	Magic          string `json:"ih_magic"`
	LoadAddr       uint32 `json:"ih_load_addr"`
	HdrSize        uint16 `json:"ih_hdr_size"`
	ProtectTLVSize uint16 `json:"ih_protect_tlv_size"`
	ImgSize        uint32 `json:"ih_img_size"`
	Flags          uint32 `json:"ih_flags"`
	Version        string `json:"ih_ver"`
	TLVInfoOff     int64  `json:"tlv_info_off"`
	TLVInfoTot     int    `json:"tlv_info_tot"`
	ImageEnd       int64  `json:"image_end"`
	SHA256         string `json:"sha256"`
	SigAlg         string `json:"sig_alg"`
	TLVs           []struct {
		Area  string `json:"area"`
		Type  string `json:"type"`
		Off   int64  `json:"off"`
		Len   int    `json:"len"`
		Value string `json:"value"`
	} `json:"tlvs"`
	Trailer *struct {
		MagicOff   int    `json:"magic_off"`
		ImageOKOff int    `json:"image_ok_off"`
		ImageOK    string `json:"image_ok"`
		AllFF      bool   `json:"everything_else_after_image_is_ff"`
	} `json:"trailer"`
}

func loadManifest(t testing.TB) []manifestEntry {
	t.Helper()
	b := readTestdata(t, "imgtool/manifest.json")
	var m []manifestEntry
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(m) != 9 {
		t.Fatalf("manifest has %d images, want 9", len(m))
	}
	return m
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadSigner(t testing.TB, name string) crypto.Signer {
	t.Helper()
	k, err := ParsePrivateKeyPEM(readTestdata(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return k
}

// testRand is a seeded source for the signing randomness tests must hand
// over (Go ignores it for ECDSA, but the API asks for it).
func testRand(seed uint64) *rand.ChaCha8 {
	var s [32]byte
	s[0] = byte(seed)
	return rand.NewChaCha8(s)
}

func mustParse(t testing.TB, img []byte) *Image {
	t.Helper()
	im, err := Parse(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return im
}

// vectorOptions are the options every imgtool vector shares.
func vectorOptions(key crypto.Signer, v Version) SignOptions {
	return SignOptions{Key: key, Rand: testRand(1), Version: v, HeaderSize: 0x200, PadHeader: true, SlotSize: vectorSlotSize, Align: 8}
}
