// Command rstguard stops forged TCP resets on a Linux gateway: it attaches an
// XDP program that judges every RST against its flow's state, and reports
// what it judged. `rstguard -h` lists the commands.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], newEnv()))
}
