package dataplane

import (
	"strings"
	"testing"
)

// Every setting reads back what it writes, and refuses what it cannot be,
// naming itself.
func TestSettings(t *testing.T) {
	def := DefaultPolicy()
	for _, s := range Settings {
		var p Policy
		if err := s.Set(&p, s.Get(def)); err != nil || s.Get(p) != s.Get(def) {
			t.Errorf("%s: set %q, got %q (%v)", s.Name, s.Get(def), s.Get(p), err)
		}
		if err := s.Set(&p, "x"); err == nil || !strings.Contains(err.Error(), s.Name) {
			t.Errorf("%s: set x: %v, want an error naming it", s.Name, err)
		}
		if !strings.Contains(def.String(), s.Name+"="+s.Get(def)) {
			t.Errorf("Policy.String %q lacks %s", def.String(), s.Name)
		}
	}
	var p Policy
	if err := (Settings[1]).Set(&p, "256"); err == nil { // ttl-tolerance is a byte
		t.Errorf("%s 256 accepted", Settings[1].Name)
	}
}
