package testutil

import (
	"runtime"
	"testing"

	"github.com/vishvananda/netns"
)

// InFreshNetns runs fn on a thread in a new network namespace, so that the
// veths it makes and the routes it adds vanish with it. A namespace belongs
// to a thread: subtests, which run on goroutines of their own, go through
// run, which enters the namespace first.
func InFreshNetns(t *testing.T, fn func(run func(name string, body func(t *testing.T)))) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies in the namespace
		ns, err := netns.New()
		if err != nil {
			t.Errorf("new netns: %v", err)
			return
		}
		defer ns.Close()
		fn(func(name string, body func(t *testing.T)) {
			t.Run(name, func(t *testing.T) {
				runtime.LockOSThread()
				if err := netns.Set(ns); err != nil {
					t.Fatal(err)
				}
				body(t)
			})
		})
	}()
	<-done
}
