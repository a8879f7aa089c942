package controlplane

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestStopRecordedStopsLiveProcessesByPID(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	cmd := exec.Command(sleep, "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	reaped := make(chan struct{})
	go func() { _ = cmd.Wait(); close(reaped) }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	dir := t.TempDir()
	recorded := []ProcessInfo{
		{Name: "gone", PID: 999999999, Binary: sleep},
		{Name: "sleeper", PID: cmd.Process.Pid, Binary: sleep},
	}
	if err := writePIDs(dir, recorded); err != nil {
		t.Fatal(err)
	}
	got, err := ReadPIDs(dir)
	if err != nil || len(got) != 2 || got[1].PID != cmd.Process.Pid {
		t.Fatalf("ReadPIDs = %v, %v", got, err)
	}
	if !got[1].Alive() {
		t.Fatal("live sleeper reported dead")
	}
	stopped, err := StopRecorded(dir, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(stopped) != 1 || stopped[0].Name != "sleeper" {
		t.Fatalf("stopped %v, want only the sleeper", stopped)
	}
	select {
	case <-reaped:
	case <-time.After(10 * time.Second):
		t.Fatal("sleeper still running after StopRecorded")
	}
}

// A recorded PID now used by another program must not be signalled.
func TestStopRecordedSparesReusedPIDs(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	cmd := exec.Command(sleep, "300")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	dir := t.TempDir()
	if err := writePIDs(dir, []ProcessInfo{{Name: "etcd", PID: cmd.Process.Pid, Binary: filepath.Join(dir, "etcd")}}); err != nil {
		t.Fatal(err)
	}
	stopped, err := StopRecorded(dir, time.Second)
	if err != nil || len(stopped) != 0 {
		t.Fatalf("stopped %v, %v; want nothing", stopped, err)
	}
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		t.Fatalf("unrelated process was stopped: %v", err)
	}
}

func TestReadPIDsWithoutRecord(t *testing.T) {
	procs, err := ReadPIDs(t.TempDir())
	if err != nil || procs != nil {
		t.Fatalf("ReadPIDs = %v, %v", procs, err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, pidsFile), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPIDs(dir); err == nil {
		t.Fatal("corrupt pid record accepted")
	}
}
