package dataplane

import (
	"os"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/rstguard/rstguard/xdp"
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

// Every field of the program's struct config but its ABI belongs to one
// setting, and a policy goes to the program and back unchanged: a field
// added to the header without a row, or a row that writes another's field,
// fails here.
func TestSettingsCoverTheConfig(t *testing.T) {
	var c xdp.RstguardConfig
	owner := map[uintptr]string{}
	for _, s := range Settings {
		off := uintptr(unsafe.Pointer(s.config(&c))) - uintptr(unsafe.Pointer(&c))
		if other, ok := owner[off]; ok {
			t.Errorf("%s and %s share a config field", s.Name, other)
		}
		owner[off] = s.Name
	}
	ct := reflect.TypeOf(c)
	for i := range ct.NumField() {
		f := ct.Field(i)
		if f.Name == "_" || f.Name == "Abi" {
			continue
		}
		if _, ok := owner[f.Offset]; !ok {
			t.Errorf("config field %s has no setting", f.Name)
		}
	}
	p := DefaultPolicy()
	p.Mode, p.TTLTolerance, p.EventBudget, p.HoldMin, p.HoldMax, p.HoldFrames, p.ProbeRate =
		ModeHold, 7, 9, 11e6, 13e6, 17, 19
	if got := policyOf(configOf(p)); got != p {
		t.Errorf("policy %+v came back %+v", p, got)
	}
	if cfg := configOf(p); cfg.Abi != ABI || cfg.HoldMinUs != 11000 || cfg.Mode != uint32(ModeHold) {
		t.Errorf("config %+v", cfg)
	}
}

// docs/DEPLOYMENT.md's table of the policy's settings is the rows': each
// setting's flag and config key, its default from the header, its meaning.
func TestSettingsDocMatchesTheRows(t *testing.T) {
	doc, err := os.ReadFile("../docs/DEPLOYMENT.md")
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	want.WriteString("| flag | config key | default | meaning |\n|---|---|---|---|\n")
	def := DefaultPolicy()
	for _, s := range Settings {
		want.WriteString("| `--" + s.Name + "` | `" + strings.ReplaceAll(s.Name, "-", "_") + "` | `" + s.Get(def) + "` | " +
			s.Usage + " |\n")
	}
	if !strings.Contains(string(doc), want.String()) {
		t.Errorf("docs/DEPLOYMENT.md lacks the settings table, which must read:\n%s", want.String())
	}
}
