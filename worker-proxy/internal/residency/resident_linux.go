package residency

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// ResidentKB returns how many KB of this process's mappings of the file
// at path are resident, from /proc/self/smaps; ok is false where smaps
// cannot be read. For tests and diagnostics.
func ResidentKB(path string) (kb int, ok bool) {
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		switch {
		case len(fields) >= 5 && strings.Contains(fields[0], "-"):
			in = fields[len(fields)-1] == path
		case in && len(fields) == 3 && fields[0] == "Rss:":
			n, _ := strconv.Atoi(fields[1])
			kb += n
		}
	}
	return kb, sc.Err() == nil
}
