package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Logger writes what structlog writes for the Python router: JSON lines ({...keys, "event", "level", "timestamp"}) in
// a pod or when asked, readable lines on a terminal; events below the level are dropped.
type Logger struct {
	mu    sync.Mutex
	out   io.Writer
	json  bool
	level int
}

var levels = map[string]int{"debug": 10, "info": 20, "warning": 30, "warn": 30, "error": 40, "critical": 50}

var logger = NewLogger(os.Stderr, "info", "json")

// NewLogger: level as Python's logging names it (unknown: info); format json, console or auto (console on a tty).
func NewLogger(out io.Writer, level, format string) *Logger {
	numeric, ok := levels[strings.ToLower(level)]
	if !ok {
		numeric = 20
	}
	useJSON := format == "json" || (format == "auto" && !isTerminal(out))
	return &Logger{out: out, json: useJSON, level: numeric}
}

func isTerminal(out io.Writer) bool {
	file, ok := out.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(file.Fd()), unix.TCGETS)
	return err == nil
}

func (l *Logger) Debug(event string, kv ...any)   { l.log(10, "debug", event, kv) }
func (l *Logger) Info(event string, kv ...any)    { l.log(20, "info", event, kv) }
func (l *Logger) Warning(event string, kv ...any) { l.log(30, "warning", event, kv) }
func (l *Logger) Error(event string, kv ...any)   { l.log(40, "error", event, kv) }

func (l *Logger) log(numeric int, level, event string, kv []any) {
	if numeric < l.level {
		return
	}
	stamp := time.Now().UTC().Format("2006-01-02T15:04:05.000000Z")
	var line string
	if l.json {
		var b strings.Builder
		b.WriteByte('{')
		write := func(key string, value any) {
			if b.Len() > 1 {
				b.WriteString(", ")
			}
			k, _ := json.Marshal(key)
			v, err := json.Marshal(value)
			if err != nil {
				v, _ = json.Marshal(fmt.Sprint(value))
			}
			b.Write(k)
			b.WriteString(": ")
			b.Write(v)
		}
		for i := 0; i+1 < len(kv); i += 2 {
			write(fmt.Sprint(kv[i]), kv[i+1])
		}
		write("event", event)
		write("level", level)
		write("timestamp", stamp)
		b.WriteByte('}')
		line = b.String()
	} else {
		pairs := make([]string, 0, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			pairs = append(pairs, fmt.Sprintf("%v=%v", kv[i], kv[i+1]))
		}
		sort.Strings(pairs)
		line = fmt.Sprintf("%s [%-9s] %-30s %s", stamp, level, event, strings.Join(pairs, " "))
		line = strings.TrimRight(line, " ")
	}
	l.mu.Lock()
	fmt.Fprintln(l.out, line)
	l.mu.Unlock()
}
