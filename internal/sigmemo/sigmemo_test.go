package sigmemo

import "testing"

func TestVerifyRemembersPassesOnly(t *testing.T) {
	m := New(2)
	calls := 0
	check := func(ok bool) func() bool { return func() bool { calls++; return ok } }
	if !m.Verify([]byte("k"), []byte("s"), []byte("m"), check(true)) || calls != 1 {
		t.Fatalf("first check: calls %d", calls)
	}
	if !m.Verify([]byte("k"), []byte("s"), []byte("m"), check(false)) || calls != 1 {
		t.Fatalf("a passed check is not remembered: calls %d", calls)
	}
	// The same bytes split differently are another check.
	if m.Verify([]byte("ks"), nil, []byte("m"), check(false)) || calls != 2 {
		t.Fatalf("a failed check passed or was not made: calls %d", calls)
	}
	if m.Verify([]byte("k"), []byte("s"), []byte("x"), check(false)) || m.Len() != 1 {
		t.Fatalf("a failed check was remembered: %d entries", m.Len())
	}
	m.Verify([]byte("a"), nil, nil, check(true))
	m.Verify([]byte("b"), nil, nil, check(true)) // full: forgets all, keeps b
	if m.Len() != 1 {
		t.Fatalf("a full memo holds %d entries, want 1", m.Len())
	}
	var none *Memo
	if none.Verify(nil, nil, nil, check(false)) {
		t.Fatal("a nil memo passed a failing check")
	}
}
