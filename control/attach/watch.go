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
	// What happened: "removed", "down", "up", "renamed" (from OldName) or
	// "returned" (a watched name appeared again, with a new index).
	What    string
	OldName string
}

func (c LinkChange) String() string {
	if c.What == "renamed" {
		return fmt.Sprintf("%s (index %d) renamed from %s", c.Ifname, c.Index, c.OldName)
	}
	return fmt.Sprintf("%s (index %d) %s", c.Ifname, c.Index, c.What)
}

// Watch reports changes to the named interfaces until ctx ends. known maps
// each watched name to its current index.
func Watch(ctx context.Context, known map[string]int, changes chan<- LinkChange) error {
	updates := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	errs := make(chan error, 1)
	err := netlink.LinkSubscribeWithOptions(updates, done, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			select {
			case errs <- err:
			default:
			}
		},
	})
	if err != nil {
		return fmt.Errorf("subscribe to link changes: %w", err)
	}
	defer close(done)

	byIndex := map[int]string{}
	up := map[string]bool{}
	for name, idx := range known {
		byIndex[idx] = name
		up[name] = true
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
				up[a.Name] = a.Flags&1 != 0
				emit(LinkChange{Ifname: a.Name, Index: a.Index, What: "returned"})
			case wasWatched:
				isUp := a.Flags&1 != 0
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
