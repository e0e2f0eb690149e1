# Streaming from Ollama and its failures: tokens pass as they come, errors
# reach the client as JSON (or as a final NDJSON line once a stream has
# begun), and every failure frees the slot.
use lib 't/lib';
use Test::Seadragon;

our $config = <<'_EOC_';
    location /api/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_http_version 1.1;
        proxy_set_header Connection "";
        proxy_set_header Host localhost;
        proxy_buffering off;
        proxy_read_timeout 1s;
    }
    location /v1/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_OLLAMA_PORT;
        proxy_set_header Host localhost;
        proxy_buffering off;
    }
    location /down/ {
        seadragon_queue ollama;
        proxy_pass http://127.0.0.1:$TEST_NGINX_DEAD_PORT/api/;
    }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value("http_config", "    seadragon_zone ollama:1m;\n")
        unless defined $block->http_config;
    $block->set_value("config", $config) unless defined $block->config;
});

# (not the harness's chat(): a request to PATH)
sub chat_to {
    my ($path, %headers) = @_;
    # OpenAI's API streams only when asked to; Ollama's streams by default
    my $stream = $path =~ m{^/v1/} ? ',"stream":true' : '';
    return start_request("POST $path",
        body => '{"model":"llama3:70b","messages":[{"role":"user","content":"hi"}]' . $stream . '}',
        headers => { 'X-Standin-Tokens' => 3, 'X-Standin-Delay-Ms' => 0, %headers });
}

run_tests();

__DATA__

=== TEST 1: tokens stream through as Ollama writes them, not at the end
--- client
    my $r = wait_request(chat_to('/api/chat', 'X-Standin-Tokens' => 6,
                                              'X-Standin-Delay-Ms' => 200));
    my $s = standin_requests()->[0];
    # the first line reached the client long before Ollama finished
    my $lead = $s->{end} - $r->{first_byte};
    my @lines = split /\n/, $r->{body};
    sprintf "%d lines, %d chunks, first byte before the end: %s",
        scalar(@lines), (scalar(@{ $r->{chunks} }) >= 6 ? 6 : 0),
        ($lead > 0.8 ? "yes" : "no ($lead)");
--- client_output: 7 lines, 6 chunks, first byte before the end: yes



=== TEST 2: OpenAI-style SSE streams through unchanged
--- client
    my $r = wait_request(chat_to('/v1/chat/completions',
        'X-Standin-Tokens' => 3));
    "$r->{status} $r->{headers}{'content-type'} "
        . ($r->{body} =~ /data: \[DONE\]\n\n$/ ? "done" : "not done");
--- client_output: 200 text/event-stream done



=== TEST 3: Ollama down answers 502 in JSON, never HTML, and frees the slot
--- client
    my $a = wait_request(chat_to('/down/chat'));
    my $b = wait_request(chat_to('/down/chat'));
    join "\n", $a->{status}, $a->{headers}{'content-type'}, $a->{body}, $b->{status};
--- client_output
502
application/json
{"error":"Ollama is unavailable: no valid answer from the model server"}
502
--- error_log
connect() failed (111: Connection refused)



=== TEST 4: Ollama's own JSON errors pass through with their status
--- client
    my $r = wait_request(chat_to('/api/chat', 'X-Standin-Fail' => '500'));
    my $n = wait_request(chat_to('/api/chat'));
    join "\n", $r->{status}, $r->{body}, $n->{status};
--- client_output
500
{"error":"llama runner process has terminated: exit status 2"}
200



=== TEST 5: an unknown model's 404 from Ollama passes through
--- request
POST /api/chat
{"model":"no-such-model","messages":[]}
--- error_code: 404
--- response_body_like: ^\{"error":"model \\"no-such-model\\" not found, try pulling it first"\}



=== TEST 6: Ollama that never answers gets 504 in JSON, and the next is served
--- client
    my $r = wait_request(chat_to('/api/chat', 'X-Standin-Fail' => 'stall'));
    my $n = wait_request(chat_to('/api/chat'));
    join "\n", $r->{status}, $r->{body}, $n->{status};
--- client_output
504
{"error":"Ollama did not answer in time: the model server timed out"}
200
--- error_log
upstream timed out



=== TEST 7: Ollama closing mid-stream ends the stream with an error line
--- client
    my $r = wait_request(chat_to('/api/chat', 'X-Standin-Fail' => 'close-mid'));
    my $n = wait_request(chat_to('/api/chat'));
    my @lines = split /\n/, $r->{body};
    join "\n", $r->{status}, scalar(@lines), $lines[-1], $n->{status};
--- client_output
200
3
{"error":"Ollama stopped before the response was complete"}
200
--- error_log
upstream prematurely closed connection



=== TEST 8: Ollama stalling mid-stream ends the stream with an error line
--- client
    my $r = wait_request(chat_to('/api/chat', 'X-Standin-Fail' => 'stall-mid'));
    my $n = wait_request(chat_to('/api/chat'));
    my @lines = split /\n/, $r->{body};
    join "\n", $r->{status}, scalar(@lines), $lines[-1], $n->{status};
--- client_output
200
3
{"error":"Ollama stopped before the response was complete"}
200
--- error_log
upstream timed out



=== TEST 9: Ollama's own mid-stream error line passes through untouched
--- client
    my $r = wait_request(chat_to('/api/chat', 'X-Standin-Fail' => 'error-mid'));
    my @lines = split /\n/, $r->{body};
    join "\n", $r->{status}, scalar(@lines), $lines[-1];
--- client_output
200
3
{"error":"an error was encountered while running the model"}
