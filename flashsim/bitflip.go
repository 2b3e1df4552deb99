package flashsim

import (
	"math"
	"math/rand/v2"
)

// flipBits flips each bit of p with probability rate. It draws the gaps
// between flipped bits from the geometric distribution instead of one draw
// per bit, so a low rate costs next to nothing.
func flipBits(p []byte, rate float64, r *rand.Rand) {
	nbits := int64(len(p)) * 8
	if rate >= 1 {
		for i := range p {
			p[i] = ^p[i]
		}
		return
	}
	logq := math.Log1p(-rate)
	for bit := int64(-1); ; {
		// Gap to the next flipped bit: floor(ln U / ln(1-rate)), U in (0, 1].
		gap := math.Floor(math.Log(1-r.Float64()) / logq)
		if gap >= float64(nbits-bit-1) {
			return
		}
		bit += int64(gap) + 1
		p[bit/8] ^= 1 << (bit % 8)
	}
}
