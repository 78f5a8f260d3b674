package pubsubpb

// The generated code is committed. To regenerate it, install protoc
// (Debian: apt-get install protobuf-compiler) and run `go generate ./proto`.
// The plugins are built from the versions pinned by the tool directives in
// go.mod, so the output is reproducible.
//go:generate sh -c "d=$(mktemp -d) && go build -o $d/protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go && go build -o $d/protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc && protoc --plugin=protoc-gen-go=$d/protoc-gen-go --plugin=protoc-gen-go-grpc=$d/protoc-gen-go-grpc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative pubsub_api.proto; s=$?; rm -rf $d; exit $s"
