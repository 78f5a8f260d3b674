package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// procMemory reads the resident memory of a process from /proc, in KiB:
// all of it, its anonymous part (heap, stacks) and its file-backed part
// (here: the archive's memory map, reclaimable page cache).
func procMemory(pid int) (rss, anon, file int64, ok bool) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		v, _ := strconv.ParseInt(fields[1], 10, 64)
		switch fields[0] {
		case "VmRSS:":
			rss = v
		case "RssAnon:":
			anon = v
		case "RssFile:":
			file = v
		}
	}
	return rss, anon, file, rss > 0
}

// BenchmarkDrainBacklogMemory: an emulator in another process holds a
// backlog of 1 KiB events (SFARCHIVE_BENCH_BACKLOG, default 200,000; the
// issue's figure is 1,000,000); `sfarchive subscribe` drains it into a new
// archive while its resident memory is sampled every 20 ms. Reports the drain
// rate and the peak resident memory, split into anonymous memory (heap and
// stacks) and file-backed pages (the archive's memory map).
func BenchmarkDrainBacklogMemory(b *testing.B) {
	total := 200_000
	if v := os.Getenv("SFARCHIVE_BENCH_BACKLOG"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 {
			b.Fatalf("SFARCHIVE_BENCH_BACKLOG=%q: want a number of events", v)
		}
		total = n
	}
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		dir := b.TempDir()
		emu := exec.Command(binPath, "emulate", "--listen", "127.0.0.1:0", "--login-listen", "", "--token", "bench-token",
			"--events", strconv.Itoa(total/2), "--event-size", "1024", "--log-level", "warn")
		out, err := emu.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := emu.Start(); err != nil {
			b.Fatal(err)
		}
		addr := ""
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), "listening on "); ok {
				addr, _, _ = strings.Cut(rest, " ")
				break
			}
		}
		if addr == "" {
			emu.Process.Kill()
			b.Fatal("the emulator did not print its address")
		}
		go func() { // keep draining the emulator's output
			for sc.Scan() {
			}
		}()

		path := filepath.Join(dir, "events.db")
		sub := exec.Command(binPath, "subscribe", "--archive", path, "--endpoint", addr, "--insecure", "--auth", "token",
			"--access-token", "bench-token", "--instance-url", emulatorInstanceURL, "--org-id", "00D000000000001AAA",
			"--topic", accountTopic, "--topic", orderTopic, "--exit-when-idle", "3s", "--log-level", "warn", "--progress", "never")
		b.StartTimer()
		start := time.Now()
		if err := sub.Start(); err != nil {
			b.Fatal(err)
		}
		var peakRSS, peakAnon, peakFile int64
		done := make(chan error, 1)
		go func() { done <- sub.Wait() }()
	sample:
		for {
			select {
			case err := <-done:
				if err != nil {
					b.Fatalf("subscribe: %v", err)
				}
				break sample
			case <-time.After(20 * time.Millisecond):
				if rss, anon, file, ok := procMemory(sub.Process.Pid); ok {
					peakRSS, peakAnon, peakFile = max(peakRSS, rss), max(peakAnon, anon), max(peakFile, file)
				}
			}
		}
		elapsed := time.Since(start) - 3*time.Second // the idle wait at the end
		b.StopTimer()
		emu.Process.Kill()
		emu.Wait()

		st, err := exec.Command(binPath, "status", "--archive", path, "--format", "json").Output()
		if err != nil {
			b.Fatal(err)
		}
		var status struct {
			FileSize int64 `json:"file_size"`
			Topics   []struct {
				Events int `json:"events"`
			} `json:"topics"`
		}
		if err := json.Unmarshal(st, &status); err != nil {
			b.Fatal(err)
		}
		got := 0
		for _, t := range status.Topics {
			got += t.Events
		}
		if got != total/2*2 {
			b.Fatalf("archived %d events, want %d", got, total/2*2)
		}
		b.ReportMetric(float64(got)/elapsed.Seconds(), "events/s")
		b.ReportMetric(float64(peakRSS)/1024, "peak-RSS-MiB")
		b.ReportMetric(float64(peakAnon)/1024, "peak-anon-MiB")
		b.ReportMetric(float64(peakFile)/1024, "peak-file-MiB")
		b.ReportMetric(float64(status.FileSize)/float64(got), "file-bytes/event")
		b.StartTimer()
	}
}
