// @tus/server 2.x peer for the benchmark: the Node server a user would pick instead of tusd-py.
//
//   node tus_node_server.mjs --port P --store file --dir DIR
//   node tus_node_server.mjs --port P --store s3 --endpoint URL --bucket B --access-key K --secret-key S
//       [--region R] [--part-size BYTES] [--part-concurrency N]
//
// Listens on 127.0.0.1 only, path /files/. Defaults are the packages' own (S3Store part size
// 8 MiB, 60 concurrent part uploads) unless the benchmark passes the same values as tusd-py's.
import { parseArgs } from "node:util";
import { FileStore } from "@tus/file-store";
import { S3Store } from "@tus/s3-store";
import { Server } from "@tus/server";

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    store: { type: "string", default: "file" },
    dir: { type: "string" },
    endpoint: { type: "string" },
    bucket: { type: "string" },
    region: { type: "string", default: "us-east-1" },
    "access-key": { type: "string" },
    "secret-key": { type: "string" },
    "part-size": { type: "string" },
    "part-concurrency": { type: "string" },
  },
});

function makeStore() {
  if (values.store === "file") {
    if (!values.dir) throw new Error("--dir is required with --store file");
    return new FileStore({ directory: values.dir });
  }
  if (values.store === "s3") {
    const options = {
      s3ClientConfig: {
        bucket: values.bucket,
        region: values.region,
        endpoint: values.endpoint,
        forcePathStyle: true,
        credentials: { accessKeyId: values["access-key"], secretAccessKey: values["secret-key"] },
      },
    };
    if (values["part-size"]) options.partSize = Number(values["part-size"]);
    if (values["part-concurrency"]) options.maxConcurrentPartUploads = Number(values["part-concurrency"]);
    return new S3Store(options);
  }
  throw new Error(`unknown --store ${values.store}`);
}

const server = new Server({ path: "/files", datastore: makeStore() });
const port = Number(values.port);
server.listen({ host: "127.0.0.1", port }, () => {
  console.log(`tus-node-server listening on http://127.0.0.1:${port}/files/ (${values.store})`);
});

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => process.exit(0));
}
