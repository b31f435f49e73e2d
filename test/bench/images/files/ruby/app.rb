# Benchmark app: requires a typical set of stdlib libraries, uses them a
# little, then serves HTTP. Prints 'ruby app ready ...' once it listens.
$stdout.sync = true
require 'benchmark'
require 'bigdecimal'
require 'csv'
require 'date'
require 'digest'
require 'erb'
require 'fileutils'
require 'json'
require 'logger'
require 'net/http'
require 'open3'
require 'openssl'
require 'optparse'
require 'ostruct'
require 'pp'
require 'securerandom'
require 'set'
require 'socket'
require 'stringio'
require 'tempfile'
require 'time'
require 'uri'
require 'yaml'
require 'zlib'

PORT = Integer(ENV.fetch('PORT', '18093'))
t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
log = Logger.new($stderr)

items = (1..500).map { |i| OpenStruct.new(id: i, name: SecureRandom.hex(4), price: BigDecimal(i) / 7) }
state = {
  'total' => items.sum(&:price).round(2).to_s('F'),
  'csv' => CSV.generate { |csv| items.first(5).each { |it| csv << [it.id, it.name] } }.lines.size,
  'yaml' => YAML.safe_load("a: 1\nb: [2, 3]\n"),
  'erb' => ERB.new('<%= 6 * 7 %>').result(binding),
  'digest' => Digest::SHA256.hexdigest(Zlib::Deflate.deflate(JSON.generate(items.map(&:to_h)))),
  'hmac' => OpenSSL::HMAC.hexdigest('SHA256', 'key', 'data'),
  'uri' => URI('http://example.invalid/x?y=1').query,
  'date' => Date.today.iso8601,
  'set' => Set.new([1, 2, 2]).size,
}
Tempfile.create('app') { |f| f.write(JSON.dump(state)) }
options = {}
OptionParser.new { |o| o.on('--port N', Integer) { |v| options[:port] = v } }.parse!(ARGV)
port = options.fetch(:port, PORT)

server = TCPServer.new('127.0.0.1', port)
puts format('ruby app ready on :%d (warm-up %.3f s)', port, Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0)
loop do
  client = server.accept
  line = client.gets
  log.info(line&.strip)
  body = JSON.generate(state)
  client.write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: #{body.bytesize}\r\nConnection: close\r\n\r\n#{body}")
  client.close
end
