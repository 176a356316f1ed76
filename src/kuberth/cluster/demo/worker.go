// A demo worker for Kuberth's local node: logs a line every $INTERVAL (5s) until stopped.
package main

import (
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	interval, err := time.ParseDuration(os.Getenv("INTERVAL"))
	if err != nil || interval <= 0 {
		interval = 5 * time.Second
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	ticker := time.NewTicker(interval)
	for n := 1; ; n++ {
		select {
		case <-stop:
			log.Print("stopping")
			return
		case <-ticker.C:
			log.Printf("work item %d done in pod %s/%s", n, os.Getenv("POD_NAMESPACE"), os.Getenv("POD_NAME"))
		}
	}
}
