// Package externalgrpcpb holds the Go code generated from
// externalgrpc.proto: the messages and the gRPC client and server of the
// cluster-autoscaler externalgrpc CloudProvider service. Kubernetes types
// in it are those of k8s.io/api and k8s.io/apimachinery. Do not edit the
// generated files; change the .proto and run `make generate-externalgrpc`.
package externalgrpcpb
