package attach

import (
	"context"
	"fmt"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// LinkChange is something that happened to a watched interface.
type LinkChange struct {
	Ifname string
	Index  int
	// What happened: "removed", "down", "up", "renamed" (from OldName),
	// "returned" (a watched name appeared again, with a new index) or
	// "xdp changed" (its XDP program was replaced or taken off).
	What    string
	OldName string
}

func (c LinkChange) String() string {
	if c.What == "renamed" {
		return fmt.Sprintf("%s (index %d) renamed from %s", c.Ifname, c.Index, c.OldName)
	}
	return fmt.Sprintf("%s (index %d) %s", c.Ifname, c.Index, c.What)
}

// Watcher is a subscription to the kernel's link changes. Subscribe before
// telling anyone the interfaces are watched: a change between the two would
// be lost.
type Watcher struct {
	updates chan netlink.LinkUpdate
	done    chan struct{}
	errs    chan error
}

// Subscribe starts receiving link changes; Run reports them.
func Subscribe() (*Watcher, error) {
	w := &Watcher{updates: make(chan netlink.LinkUpdate, 64), done: make(chan struct{}), errs: make(chan error, 1)}
	err := netlink.LinkSubscribeWithOptions(w.updates, w.done, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			select {
			case w.errs <- err:
			default:
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe to link changes: %w", err)
	}
	return w, nil
}

// Run reports changes to the named interfaces until ctx ends, then ends the
// subscription. known maps each watched name to its current index.
func (w *Watcher) Run(ctx context.Context, known map[string]int, changes chan<- LinkChange) error {
	updates, errs := w.updates, w.errs
	defer close(w.done)

	byIndex := map[int]string{}
	up := map[string]bool{}
	prog := map[int]uint32{} // the XDP program on each watched index
	for name, idx := range known {
		byIndex[idx] = name
		up[name] = true
		if st, err := StateOfIndex(idx); err == nil {
			prog[idx] = st.ProgID
		}
	}
	emit := func(c LinkChange) {
		select {
		case changes <- c:
		case <-ctx.Done():
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errs:
			return fmt.Errorf("link watch: %w", err)
		case u, ok := <-updates:
			if !ok {
				return fmt.Errorf("link watch: netlink subscription closed")
			}
			a := u.Attrs()
			old, wasWatched := byIndex[a.Index]
			_, nameWatched := known[a.Name]
			switch {
			case u.Header.Type == unix.RTM_DELLINK && wasWatched:
				delete(byIndex, a.Index)
				emit(LinkChange{Ifname: old, Index: a.Index, What: "removed"})
			case u.Header.Type != unix.RTM_NEWLINK:
			case wasWatched && old != a.Name:
				delete(byIndex, a.Index)
				emit(LinkChange{Ifname: a.Name, Index: a.Index, What: "renamed", OldName: old})
				if nameWatched {
					byIndex[a.Index] = a.Name
					emit(LinkChange{Ifname: a.Name, Index: a.Index, What: "returned"})
				}
			case !wasWatched && nameWatched:
				byIndex[a.Index] = a.Name
				known[a.Name] = a.Index
				up[a.Name] = Running(a)
				emit(LinkChange{Ifname: a.Name, Index: a.Index, What: "returned"})
			case wasWatched:
				if id := progOf(a); id != prog[a.Index] {
					prog[a.Index] = id
					emit(LinkChange{Ifname: a.Name, Index: a.Index, What: "xdp changed"})
				}
				isUp := Running(a)
				if isUp != up[a.Name] {
					up[a.Name] = isUp
					what := "down"
					if isUp {
						what = "up"
					}
					emit(LinkChange{Ifname: a.Name, Index: a.Index, What: what})
				}
			}
		}
	}
}

// progOf is the ID of the XDP program a link update says is attached, 0 none.
func progOf(a *netlink.LinkAttrs) uint32 {
	if a.Xdp == nil || !a.Xdp.Attached {
		return 0
	}
	return a.Xdp.ProgId
}
