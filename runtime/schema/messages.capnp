@0xb7f3c2a91d4e6f01;
# Every message that travels between Troupe's actors. Each struct is wrapped in one typed envelope
# (runtime/schema/envelope.hpp): a local send passes a reference to the frozen bytes, a remote send copies them.

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("troupe::schema");

enum FinishReason {
  none @0;      # still running
  stop @1;      # EOS or a stop token
  length @2;    # max_tokens or max-model-len reached
  abort @3;     # the client went away or asked to abort
  error @4;     # the engine failed the request (worker lost, shutdown, ...); see TokenEvent.message
}

struct SamplingParams {
  temperature @0 :Float32 = 1.0;
  topP @1 :Float32 = 1.0;
  topK @2 :Int32 = -1;
  minP @3 :Float32 = 0.0;
  seed @4 :UInt64;
  hasSeed @5 :Bool;
  maxTokens @6 :UInt32 = 16;
  minTokens @7 :UInt32;
  ignoreEos @8 :Bool;
  stopTokenIds @9 :List(Int32);
  presencePenalty @10 :Float32;
  frequencyPenalty @11 :Float32;
  repetitionPenalty @12 :Float32 = 1.0;
  logprobs @13 :Int32 = -1;    # -1: none; N: top-N logprobs per sampled token
  promptLogprobs @14 :Int32 = -1;  # -1: none; N: per prompt position the prompt token's logprob + top N
}

# frontend -> scheduler: a new request, already tokenized and validated.
struct SubmitRequest {
  requestId @0 :UInt64;
  promptTokens @1 :List(Int32);
  sampling @2 :SamplingParams;
  arrivalNs @3 :Int64;           # steady-clock ns when the frontend received it
  eosTokenId @4 :Int32 = -1;
}

# frontend -> scheduler: stop a request; its blocks go back to the pool.
struct AbortRequest {
  requestId @0 :UInt64;
  reason @1 :Text;
}

# scheduler -> frontend (one message per step and sink): the tokens each request produced.
struct TokenEvent {
  requestId @0 :UInt64;
  firstIndex @1 :UInt32;         # output position of tokens[0]; events of one request are contiguous
  tokens @2 :List(Int32);
  finishReason @3 :FinishReason;
  stopTokenId @4 :Int32 = -1;    # the stop token that ended it (finishReason stop), else -1
  message @5 :Text;              # why, for abort and error
  numPromptTokens @6 :UInt32;
  numCachedTokens @7 :UInt32;    # prompt tokens served from the prefix cache
  errorStatus @8 :UInt16;        # finishReason error: the HTTP status it maps to (400 invalid, 503 overloaded/lost)
  logprobs @9 :List(TokenLogprobs);  # parallel to tokens when the request asked for logprobs, else empty
  promptLogprobs @10 :List(TokenLogprobs);  # prompt positions 1..n-1 (logprob of the prompt token, its
                                            # rank, top N); with the first token when sampling.promptLogprobs >= 0
}
struct TokenEvents {
  events @0 :List(TokenEvent);
  sentNs @1 :Int64;              # steady clock when the scheduler sent it (the frontend measures its overhead)
}

# scheduler -> every gpu_worker of the group. Diffs only: a request's tokens travel once (NewRequest);
# later steps name it with how many tokens to compute and the blocks added since.
struct NewRequest {
  requestId @0 :UInt64;
  tokenIds @1 :List(Int32);      # prompt, plus generated tokens when a preempted request resumes
  numComputedTokens @2 :UInt32;  # tokens whose KV is already in the blocks (prefix-cache hits)
  blockIds @3 :List(UInt32);
  numScheduledTokens @4 :UInt32;
  sampling @5 :SamplingParams;
  numPromptTokens @6 :UInt32;    # tokenIds[0, numPromptTokens) are the prompt (penalties); 0 = all of them
  eosTokenId @7 :Int32 = -1;     # masked while fewer than sampling.minTokens outputs exist
}
struct ScheduledRequest {
  requestId @0 :UInt64;
  numScheduledTokens @1 :UInt32;
  newBlockIds @2 :List(UInt32);
}
struct StepPlan {
  stepId @0 :UInt64;
  newRequests @1 :List(NewRequest);
  scheduled @2 :List(ScheduledRequest);
  finishedIds @3 :List(UInt64);  # forget these (finished, aborted or preempted) before this step
  totalScheduledTokens @4 :UInt32;
}

# One sampled token's logprob (of the raw logits, vLLM's default) and the request's top-N alternatives.
struct TopLogprob {
  token @0 :Int32;
  logprob @1 :Float32;
}
struct TokenLogprobs {
  logprob @0 :Float32;           # of the sampled token
  top @1 :List(TopLogprob);      # the N most likely tokens, best first (N = sampling.logprobs)
  rank @2 :UInt32;               # 1-based rank of the token (vLLM: tokens with logprob >= its own); 0 unset
}

# gpu_worker -> scheduler. Only rank 0 samples; other ranks answer with no outputs.
struct SampledOutput {
  requestId @0 :UInt64;
  tokens @1 :List(Int32);
  logprobs @2 :List(TokenLogprobs);  # parallel to tokens when sampling.logprobs >= 0, else empty
  promptLogprobs @3 :List(TokenLogprobs);  # prompt positions 1..n-1, with a request's first token
}
struct StepResult {
  stepId @0 :UInt64;
  rank @1 :UInt32;
  outputs @2 :List(SampledOutput);
  execUs @3 :UInt64;
  error @4 :Text;                # non-empty: the step failed on this worker
}

# coordinator -> gpu_worker, and its answer.
struct SimCost {
  stepUs @0 :Float64;
  prefillTokenUs @1 :Float64;
  decodeSeqUs @2 :Float64;
  vocabSize @3 :UInt32;
}
struct WorkerInit {
  rank @0 :UInt32;
  worldSize @1 :UInt32;
  backend @2 :Text;
  model @3 :Text;
  blockSize @4 :UInt32;
  numBlocks @5 :UInt32;
  sim @6 :SimCost;
  seed @7 :UInt64;
  loadFormat @8 :Text;           # auto | dummy (weights from `seed`, no checkpoint files)
  groupId @9 :UInt64;            # names the tensor-parallel group (the cpu backend's in-process all-reduce)
  # the cuda backend's memory plan (vLLM's keys): KV blocks = what gpuMemoryUtilization leaves after weights
  # and the activations of a maxNumBatchedTokens step; numBlocks above caps it, numGpuBlocksOverride fixes it
  gpuMemoryUtilization @10 :Float32 = 0.9;
  maxNumBatchedTokens @11 :UInt32 = 8192;
  maxNumSeqs @12 :UInt32 = 256;
  maxModelLen @13 :UInt32 = 4096;
  numGpuBlocksOverride @14 :UInt32;  # 0: sized from memory
  enforceEager @15 :Bool;        # cuda backend: no CUDA graphs for decode steps
}
struct WorkerReady {
  rank @0 :UInt32;
  device @1 :Text;
  numBlocks @2 :UInt32;          # KV blocks this worker can hold
}

# scheduler <-> kv_cache_manager: one batched exchange per step. Frees are applied first, then each
# allocation in order, all or nothing per request: the request then has blocks for numTokens tokens.
# Prefix caching: the scheduler hashes each full block (hash(parent hash, the block's token ids)) and sends
# the hashes once; for a request the manager holds no blocks of, the manager first reuses cached blocks of
# the longest matching prefix (never the block of the last known token: one token is always computed, so
# it can be sampled). A block filled in one exchange becomes a cache hit from the next one on, when its KV
# has been written.
struct KvAlloc {
  requestId @0 :UInt64;
  numTokens @1 :UInt32;          # tokens the table must cover, counted as if nothing were cached
  blockHashes @2 :List(UInt64);  # hash chain of the request's full blocks not sent before, in order
  numKnownTokens @3 :UInt32;     # prompt + outputs so far: bounds the prefix-cache lookup
}
struct KvRequest {
  frees @0 :List(UInt64);
  allocs @1 :List(KvAlloc);
  resetPrefixCache @2 :Bool;     # after the frees: forget every cached block (a re-formed group's fresh
                                 # workers hold none of that KV)
}
struct KvGrant {
  requestId @0 :UInt64;
  ok @1 :Bool;
  newBlockIds @2 :List(UInt32);  # cached blocks first (a new request's hits), then fresh ones
  numCachedTokens @3 :UInt32;    # tokens whose KV the hits already hold (a new request only)
  numTokens @4 :UInt32;          # tokens the table now covers; below cached + asked when blocks ran short
}
struct KvReply {
  grants @0 :List(KvGrant);
  numFreeBlocks @1 :UInt32;      # blocks no request holds, cached ones included (they are evictable)
  numTotalBlocks @2 :UInt32;
  numCachedBlocks @3 :UInt32;    # blocks whose content is in the prefix cache
}

struct Health {
  healthy @0 :Bool;
  message @1 :Text;
  workersReady @2 :UInt32;
  workersExpected @3 :UInt32;
}

struct MetricsSnapshot {
  numRunning @0 :UInt32;
  numWaiting @1 :UInt32;
  kvBlocksTotal @2 :UInt32;
  kvBlocksFree @3 :UInt32;
  kvBlocksOwned @4 :UInt32;      # sum of block-table lengths (== total - free without prefix sharing)
  stepsTotal @5 :UInt64;
  promptTokensTotal @6 :UInt64;
  generationTokensTotal @7 :UInt64;
  preemptionsTotal @8 :UInt64;
  requestsFinished @9 :UInt64;
  requestsAborted @10 :UInt64;
  requestsErrored @11 :UInt64;
  requestsFinishedStop @12 :UInt64;
  requestsFinishedLength @13 :UInt64;
  prefixCacheQueriesTotal @14 :UInt64;   # prompt tokens looked up in the prefix cache
  prefixCacheHitsTotal @15 :UInt64;      # of those, tokens found
  timeToFirstToken @16 :Histogram;       # seconds, arrival to first generated token
  interTokenLatency @17 :Histogram;      # seconds between two tokens of a request
  e2eRequestLatency @18 :Histogram;      # seconds, arrival to finish
  requestQueueTime @19 :Histogram;       # seconds, arrival to first scheduled
}

# A Prometheus histogram's state: counts per bucket (not cumulative), the last one for +Inf.
struct Histogram {
  upperBounds @0 :List(Float64);
  bucketCounts @1 :List(UInt64);
  sum @2 :Float64;
  count @3 :UInt64;
}
