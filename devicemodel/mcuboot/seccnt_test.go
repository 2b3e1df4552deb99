package mcuboot

import (
	"errors"
	"testing"
)

func TestMemSecurityCountersOnlyRise(t *testing.T) {
	m := NewMemSecurityCounters(30)
	if v, err := m.SecurityCounter(0); v != 30 || err != nil {
		t.Fatalf("image 0 = %d, %v", v, err)
	}
	if v, _ := m.SecurityCounter(1); v != 0 {
		t.Errorf("image 1 starts at %d", v)
	}
	must(t, m.RaiseSecurityCounter(0, 30))
	must(t, m.RaiseSecurityCounter(0, 31))
	if err := m.RaiseSecurityCounter(0, 29); !errors.Is(err, ErrCounterDecrease) {
		t.Errorf("lowering: %v, want ErrCounterDecrease", err)
	}
	if v, _ := m.SecurityCounter(0); v != 31 {
		t.Errorf("counter %d after a refused decrease, want 31", v)
	}
	must(t, m.RaiseSecurityCounter(2, 5))
	if v, _ := m.SecurityCounter(2); v != 5 {
		t.Errorf("image 2 = %d", v)
	}
	if _, err := m.SecurityCounter(-1); err == nil {
		t.Error("image -1 has a counter")
	}
}
