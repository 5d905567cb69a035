package tcpflag

import "testing"

func TestString(t *testing.T) {
	for flags, want := range map[uint8]string{0x02: "S", 0x12: "S.", 0x04: "R", 0x14: "R.", 0x18: "P.", 0x11: "F.", 0x20: "U", 0: "none"} {
		if got := String(flags); got != want {
			t.Errorf("String(%#x) = %q, want %q", flags, got, want)
		}
	}
}
