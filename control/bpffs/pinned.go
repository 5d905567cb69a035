package bpffs

import (
	"github.com/cilium/ebpf"
)

// PinnedMapID is the kernel's ID of the map pinned at path.
func PinnedMapID(path string) (uint32, error) {
	m, err := ebpf.LoadPinnedMap(path, nil)
	if err != nil {
		return 0, err
	}
	defer m.Close()
	info, err := m.Info()
	if err != nil {
		return 0, err
	}
	id, _ := info.ID()
	return uint32(id), nil
}
