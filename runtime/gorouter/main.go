// Command croupier-modelrouter is the compiled model router: TF Serving's REST and gRPC API in front of TF Serving,
// splitting requests that name no version between the labels stable and canary by the live weight, and counting per
// version. It behaves as `croupier-runtime router` (runtime/modelrouter) does: same flags, environment, routing
// file, routing, answers and metrics.
package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func main() { os.Exit(run(os.Args[1:])) }

func run(args []string) int {
	settings, err := LoadSettings(args, os.Environ())
	if errors.Is(err, errHelp) {
		fmt.Print(usage())
		return 0
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "croupier-modelrouter: %v\n", err)
		return 2
	}
	logger = NewLogger(os.Stderr, settings.LogLevel, settings.LogFormat)
	upstream, _ := ParseUpstream(settings.UpstreamRest) // checked by LoadSettings
	service := NewService(NewMetrics(), nil)
	table := NewTableFile(settings.RoutingFile, service.Replace, service.RecordReload)
	table.Check()
	stopPolling := make(chan struct{})
	go func() {
		ticker := time.NewTicker(time.Duration(settings.PollSeconds * float64(time.Second)))
		defer ticker.Stop()
		for {
			select {
			case <-ticker.C:
				table.Check()
			case <-stopPolling:
				return
			}
		}
	}()
	restListener, err := net.Listen("tcp", net.JoinHostPort(settings.Host, strconv.Itoa(settings.RestPort)))
	if err != nil {
		logger.Error("cannot listen for REST", "error", err.Error())
		return 1
	}
	grpcListener, err := net.Listen("tcp", net.JoinHostPort(settings.Host, strconv.Itoa(settings.GrpcPort)))
	if err != nil {
		logger.Error("cannot listen for gRPC", "error", err.Error())
		return 1
	}
	rest := NewRestRouter(service, upstream, settings.UnitHeader, settings.UpstreamTimeoutSeconds, settings.MaxBodyBytes)
	go rest.Serve(restListener)
	relay := NewGrpcRelay(service, settings.UpstreamGrpc, settings.UnitHeader, settings.UpstreamTimeoutSeconds)
	go relay.Serve(grpcListener)
	logger.Info("routing",
		"host", settings.Host,
		"rest_port", restListener.Addr().(*net.TCPAddr).Port,
		"grpc_port", grpcListener.Addr().(*net.TCPAddr).Port,
		"upstream_rest", settings.UpstreamRest,
		"upstream_grpc", settings.UpstreamGrpc,
		"routing_file", settings.RoutingFile,
	)
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
	logger.Info("stopping")
	close(stopPolling)
	relay.Close(5 * time.Second)
	rest.Close(5 * time.Second)
	return 0
}
