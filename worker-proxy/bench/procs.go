package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"syscall"
	"time"
)

// child is a server process the harness started and measures.
type child struct {
	name    string
	cmd     *exec.Cmd
	URL     string // from its "listening on" line
	logPath string // its stderr (and stdout after the banner)
	stdin   io.WriteCloser
	done    chan struct{} // closed when it has exited
	waitErr error         // its exit status, once done is closed
}

// pid is the child's process id.
func (c *child) pid() int { return c.cmd.Process.Pid }

// children are the processes of one run, all stopped at its end.
type children struct {
	mu   sync.Mutex
	list []*child
}

// listening finds a server's base URL in its banner.
var listening = regexp.MustCompile(`listening on (http://127\.0\.0\.1:[0-9]+)`)

// start runs path with args and exactly env, sending its output to
// logPath, and waits until it prints its "listening on" line. The child
// is killed if the harness dies (Pdeathsig) and is stopped by stopAll.
func (cs *children) start(ctx context.Context, name, path string, args, env []string, logPath string) (*child, error) {
	return cs.startUntil(ctx, name, path, args, env, logPath, listening)
}

// startUntil is start waiting for a line that matches ready instead; the
// child's URL is ready's first group, if it has one.
func (cs *children) startUntil(ctx context.Context, name, path string, args, env []string, logPath string, ready *regexp.Regexp) (*child, error) {
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("start %s: create log: %w", name, err)
	}
	c := &child{name: name, logPath: logPath, done: make(chan struct{})}
	c.cmd = exec.Command(path, args...)
	c.cmd.Env = env
	c.cmd.Stderr = logf
	c.cmd.SysProcAttr = childAttr()
	out, err := c.cmd.StdoutPipe()
	if err == nil {
		c.stdin, err = c.cmd.StdinPipe()
	}
	if err == nil {
		err = c.cmd.Start()
	}
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s (%s): %w", name, path, err)
	}
	cs.mu.Lock()
	cs.list = append(cs.list, c)
	cs.mu.Unlock()

	found := make(chan string, 1)
	go func() {
		// Copy stdout to the log, reporting the first listening line; then
		// reap the child (Wait must follow the last read of stdout).
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if m := ready.FindStringSubmatch(line); m != nil {
				select {
				case found <- m[len(m)-1]:
				default:
				}
			}
		}
		c.waitErr = c.cmd.Wait()
		logf.Close()
		close(c.done)
	}()
	timer := time.NewTimer(30 * time.Second)
	defer timer.Stop()
	select {
	case c.URL = <-found:
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("%s exited before listening (%v); its log:\n%s", name, c.waitErr, tail(logPath))
	case <-timer.C:
		return nil, fmt.Errorf("%s did not print a line matching %q within 30s; its log:\n%s", name, ready, tail(logPath))
	case <-ctx.Done():
		return nil, fmt.Errorf("start %s: %w", name, ctx.Err())
	}
}

// stopAll stops every child: SIGTERM, then SIGKILL for those still running
// after a grace period. It returns the errors of children that exited
// badly before they were asked to stop.
func (cs *children) stopAll(grace time.Duration) error {
	cs.mu.Lock()
	list := cs.list
	cs.list = nil
	cs.mu.Unlock()
	var errs []error
	for _, c := range list {
		select {
		case <-c.done:
			if c.waitErr != nil {
				errs = append(errs, fmt.Errorf("%s exited early: %v; its log:\n%s", c.name, c.waitErr, tail(c.logPath)))
			}
			continue
		default:
		}
		c.cmd.Process.Signal(syscall.SIGTERM)
		c.stdin.Close()
	}
	deadline := time.NewTimer(grace)
	defer deadline.Stop()
	for _, c := range list {
		select {
		case <-c.done:
		case <-deadline.C:
			for _, c := range list {
				c.cmd.Process.Kill()
			}
			for _, c := range list {
				<-c.done
			}
			return errors.Join(errs...)
		}
	}
	return errors.Join(errs...)
}

// stop ends one child before the run does: SIGTERM, SIGKILL after grace.
// It returns an error if the child had already exited or did not stop on
// SIGTERM.
func (cs *children) stop(c *child, grace time.Duration) error {
	cs.mu.Lock()
	for i, o := range cs.list {
		if o == c {
			cs.list = append(cs.list[:i:i], cs.list[i+1:]...)
			break
		}
	}
	cs.mu.Unlock()
	if err := c.alive(); err != nil {
		return err
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	c.stdin.Close()
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-c.done:
		return nil
	case <-timer.C:
		c.cmd.Process.Kill()
		<-c.done
		return fmt.Errorf("%s did not stop within %s of SIGTERM", c.name, grace)
	}
}

// alive reports an error if c has exited.
func (c *child) alive() error {
	select {
	case <-c.done:
		return fmt.Errorf("%s exited (%v); its log:\n%s", c.name, c.waitErr, tail(c.logPath))
	default:
		return nil
	}
}

// tail returns the end of a log file, for error messages.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	const n = 2000
	if len(b) > n {
		b = append([]byte("…"), b[len(b)-n:]...)
	}
	return string(b)
}
