package main

import (
	"os"
	"os/signal"
	"syscall"
)

// signalStop closes its channel on the first SIGINT or SIGTERM.
func signalStop() <-chan struct{} {
	stop := make(chan struct{})
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-sigs
		close(stop)
	}()
	return stop
}
