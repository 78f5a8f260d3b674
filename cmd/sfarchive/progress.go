package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sfarchive/sfarchive/subscriber"
)

// isTerminal reports whether w is a character device (an interactive
// terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressLine redraws one line per topic on a terminal, at most a few
// times a second.
type progressLine struct {
	mu     sync.Mutex
	w      io.Writer
	order  []string
	latest map[string]subscriber.TopicProgress
	drawn  int
	last   time.Time
}

func newProgressLine(w io.Writer, topics []string) *progressLine {
	order := append([]string(nil), topics...)
	sort.Strings(order)
	return &progressLine{w: w, order: order, latest: map[string]subscriber.TopicProgress{}}
}

func (p *progressLine) update(tp subscriber.TopicProgress) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.latest[tp.Topic] = tp
	if time.Since(p.last) < 250*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.draw()
}

func (p *progressLine) draw() {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn) // back to the first line
	}
	for _, t := range p.order {
		tp, ok := p.latest[t]
		b.WriteString("\x1b[2K")
		if !ok {
			fmt.Fprintf(&b, "%-40s connecting…\n", t)
			continue
		}
		if tp.Stopped {
			fmt.Fprintf(&b, "%-40s %10d events  %8.1f/s  done\n", t, tp.Archived, tp.Rate)
			continue
		}
		lag := "lag -"
		if !tp.LastEventTime.IsZero() {
			lag = "lag " + time.Since(tp.LastEventTime).Round(time.Second).String()
		}
		last := "no event yet"
		if !tp.LastReceived.IsZero() {
			last = "last received " + time.Since(tp.LastReceived).Round(time.Second).String() + " ago"
		}
		state := "connected"
		if !tp.Connected {
			state = "reconnecting"
		}
		fmt.Fprintf(&b, "%-40s %10d events  %8.1f/s  %s  %s  %s\n", t, tp.Archived, tp.Rate, lag, last, state)
	}
	p.drawn = len(p.order)
	io.WriteString(p.w, b.String())
}

func (p *progressLine) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw()
}
