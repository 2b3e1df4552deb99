package flashsim

import "testing"

func BenchmarkFill16K(b *testing.B) {
	p := make([]byte, 16384)
	b.SetBytes(16384)
	for range b.N {
		fill(p, 0xff)
	}
}
func TestFillFills(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 255, 256, 1000} {
		p := make([]byte, n)
		fill(p, 0xab)
		for i, c := range p {
			if c != 0xab {
				t.Fatal(n, i)
			}
		}
	}
}
