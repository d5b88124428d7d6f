// Prints how Go's net.ParseIP and net.ParseCIDR (what host-local and bridge parse configs with)
// read each line of stdin, one output line per input line, tab-separated:
//
//	ip:   0 (refused), 4 or 6 and the address as Go prints it, or 4m when text with a colon
//	      parses as IPv4 (an IPv4-mapped IPv6 address, which Go's net.IP cannot tell from IPv4)
//	cidr: 0 (refused), or the family, the address as written and the network, as Go prints them
//
// Run by ../gen-go-golden.ts; `go run main.go < inputs`.
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
)

func family(ip net.IP, text string) string {
	if ip.To4() != nil {
		if strings.Contains(text, ":") {
			return "4m"
		}
		return "4"
	}
	return "6"
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		s := in.Text()
		if ip := net.ParseIP(s); ip == nil {
			fmt.Fprint(out, "0")
		} else {
			fmt.Fprintf(out, "%s %s", family(ip, s), ip)
		}
		if ip, ipnet, err := net.ParseCIDR(s); err != nil {
			fmt.Fprint(out, "\t0\n")
		} else {
			ones, _ := ipnet.Mask.Size()
			fmt.Fprintf(out, "\t%s %s %s/%d\n", family(ip, s[:strings.IndexByte(s, '/')]), ip, ipnet.IP, ones)
		}
	}
}
