#!/usr/bin/env python3
"""A SAML identity provider built on pysaml2 (Debian python3-pysaml2), for Brána's interop tests.

It answers the way Shibboleth IdP does by default, or as a service provider's options say:
  GET  /metadata        its metadata (pysaml2's entity_descriptor)
  GET  /sso/redirect    an HTTP-Redirect AuthnRequest, its query signature checked against the SP's
                        signing certificate; answered at once (no login form) with an HTTP-POST
                        auto-submit page carrying the SAMLResponse for the test citizen.

Usage: pysaml2-idp.py <port> <work dir>. The work dir holds idp.key and idp.crt (the IdP's key),
citizen.json ({"name_id", "authn_context", "attributes": {SAML name: [values]}}) and sp/<name>.xml
(an SP's metadata) with sp/<name>.json (its options: sign_response, sign_assertion,
encrypt_assertion, data_encryption, and sign_alg / digest_alg to
sign otherwise than with rsa-sha256 / sha256). SP metadata is read again for every request, so SPs can be
added while the IdP runs (Brána's SP metadata exists only once Brána runs, and Brána needs this
IdP's metadata to start).
"""
import base64
import glob
import json
import os
import sys
import traceback
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, unquote

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.config import IdPConfig
from saml2.entity import Entity
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.server import Server
from saml2.sigver import get_pem_wrapped_unwrapped, make_temp, pre_encryption_part
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

PORT = int(sys.argv[1])
WORK = sys.argv[2]
BASE = 'http://127.0.0.1:%d' % PORT
ENTITY_ID = BASE + '/metadata'

AES128_GCM = 'http://www.w3.org/2009/xmlenc11#aes128-gcm'
RSA_OAEP_MGF1P = 'http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p'
# xmlsec1's name of the session key each data encryption needs.
SESSION_KEYS = {
    AES128_GCM: 'aes-128',
    'http://www.w3.org/2009/xmlenc11#aes256-gcm': 'aes-256',
    'http://www.w3.org/2001/04/xmlenc#aes128-cbc': 'aes-128',
    'http://www.w3.org/2001/04/xmlenc#aes256-cbc': 'aes-256',
}
REDIRECT_SIGNATURES = {
    'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256': hashes.SHA256(),
    'http://www.w3.org/2001/04/xmldsig-more#rsa-sha512': hashes.SHA512(),
}


class IdentityProvider(Server):
    """pysaml2's Server with the data encryption of the SP's options.

    pysaml2 7.0.1 always encrypts with its default, tripledes-cbc (pre_encryption_part's msg_enc, and a
    des-192 session key for xmlsec1); Shibboleth IdP 4+ uses aes128-gcm. Only that choice is changed
    here: the template, key transport (rsa-oaep-mgf1p) and xmlsec1 call are pysaml2's own.
    """

    data_encryption = AES128_GCM

    def _encrypt_assertion(self, encrypt_cert, sp_entity_id, response, node_xpath=None):
        certificates = [encrypt_cert] if encrypt_cert else self.metadata.certs(sp_entity_id, 'any', 'encryption')
        if not certificates:
            raise ValueError('the SP announces no encryption certificate')
        wrapped, unwrapped = get_pem_wrapped_unwrapped(certificates[0])
        certificate_file = make_temp(wrapped.encode('ascii'), decode=False, delete_tmpfiles=self.config.delete_tmpfiles)
        template = pre_encryption_part(msg_enc=self.data_encryption, key_enc=RSA_OAEP_MGF1P, encrypt_cert=unwrapped)
        return self.sec.encrypt_assertion(response, certificate_file.name, template, key_type=SESSION_KEYS[self.data_encryption], node_xpath=node_xpath)


def service_providers():
    """(metadata files, options by entity id) as the work dir holds them now."""
    files = sorted(glob.glob(os.path.join(WORK, 'sp', '*.xml')))
    options = {}
    for file in files:
        with open(file[:-4] + '.json') as handle:
            entry = json.load(handle)
        options[entry['entity_id']] = entry
    return files, options


_servers = {}


def identity_provider(metadata_files, parsing_requests=False):
    """A pysaml2 Server for these SP metadata files, made once per set of files (it is slow to make)."""
    key = (tuple((file, os.path.getmtime(file)) for file in metadata_files), parsing_requests)
    if key not in _servers:
        _servers[key] = make_identity_provider(metadata_files, parsing_requests)
    return _servers[key]


def make_identity_provider(metadata_files, parsing_requests):
    config = IdPConfig()
    config.load({
        'entityid': ENTITY_ID,
        'service': {'idp': {
            'endpoints': {'single_sign_on_service': [(BASE + '/sso/redirect', BINDING_HTTP_REDIRECT)]},
            'name_id_format': [NAMEID_FORMAT_PERSISTENT],
            # pysaml2 7.0.1 signs with rsa-sha1 and sha1 digests unless told otherwise here, in the
            # service section (at the top level they are ignored); Brána refuses SHA-1.
            'signing_algorithm': SIG_RSA_SHA256,
            'digest_algorithm': DIGEST_SHA256,
            # Announced in the metadata. pysaml2 7.0.1 then looks for an XML signature inside the
            # request even in the Redirect binding, which signs the query instead: the server that
            # parses requests leaves that to redirect_signature_valid.
            'want_authn_requests_signed': not parsing_requests,
            # Attributes are released by their SAML (URI) names, as given; no converter renames them.
            'policy': {'default': {'lifetime': {'minutes': 5}, 'attribute_restrictions': None, 'name_form': 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri'}},
        }},
        'key_file': os.path.join(WORK, 'idp.key'),
        'cert_file': os.path.join(WORK, 'idp.crt'),
        'encryption_keypairs': [{'key_file': os.path.join(WORK, 'idp.key'), 'cert_file': os.path.join(WORK, 'idp.crt')}],
        'metadata': {'local': metadata_files},
        'xmlsec_binary': '/usr/bin/xmlsec1',
        'delete_tmpfiles': True,
    })
    return IdentityProvider(config=config)


def redirect_signature_valid(raw_query, certificate_pem):
    """The HTTP-Redirect binding's signature, over the query's own bytes (SAML bindings 3.4.4.1)."""
    segments = {}
    for segment in raw_query.split('&'):
        key = segment.split('=', 1)[0]
        segments[key] = segment
    if 'Signature' not in segments or 'SigAlg' not in segments:
        return False
    algorithm = REDIRECT_SIGNATURES.get(unquote(segments['SigAlg'].split('=', 1)[1]))
    if algorithm is None:
        return False
    signed = '&'.join(segments[key] for key in ('SAMLRequest', 'RelayState', 'SigAlg') if key in segments).encode('ascii')
    signature = base64.b64decode(unquote(segments['Signature'].split('=', 1)[1]))
    key = x509.load_pem_x509_certificate(certificate_pem.encode('ascii')).public_key()
    try:
        key.verify(signature, signed, padding.PKCS1v15(), algorithm)
        return True
    except Exception:
        return False


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):
        sys.stderr.write('pysaml2-idp: ' + (format % args) + '\n')

    def answer(self, status, content_type, body):
        data = body.encode('utf-8')
        self.send_response(status)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        try:
            path, _, query = self.path.partition('?')
            if path == '/metadata':
                return self.answer(200, 'application/samlmetadata+xml', str(entity_descriptor(identity_provider([]).config)))
            if path == '/sso/redirect':
                return self.single_sign_on(query)
            return self.answer(404, 'text/plain', 'not found')
        except Exception:
            traceback.print_exc()
            return self.answer(500, 'text/plain', traceback.format_exc())

    def single_sign_on(self, query):
        files, options = service_providers()
        server = identity_provider(files, parsing_requests=True)
        params = {key: values[0] for key, values in parse_qs(query).items()}
        request = server.parse_authn_request(params['SAMLRequest'], BINDING_HTTP_REDIRECT).message
        sp = request.issuer.text
        if sp not in options:
            return self.answer(403, 'text/plain', 'unknown service provider %s' % sp)
        signing = server.metadata.certs(sp, 'spsso', 'signing')
        if not any(redirect_signature_valid(query, get_pem_wrapped_unwrapped(cert)[0]) for cert in signing):
            return self.answer(403, 'text/plain', 'the AuthnRequest signature does not verify')
        sp_options = options[sp]
        server.data_encryption = sp_options.get('data_encryption', AES128_GCM)
        with open(os.path.join(WORK, 'citizen.json')) as handle:
            citizen = json.load(handle)
        acs = server.metadata.assertion_consumer_service(sp, BINDING_HTTP_POST)[0]['location']
        if request.assertion_consumer_service_url and request.assertion_consumer_service_url != acs:
            return self.answer(403, 'text/plain', 'the AssertionConsumerServiceURL is not in the SP metadata')
        response = server.create_authn_response(
            identity=citizen['attributes'],
            in_response_to=request.id,
            destination=acs,
            sp_entity_id=sp,
            name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, sp_name_qualifier=sp, name_qualifier=ENTITY_ID, text=citizen['name_id']),
            authn={'class_ref': citizen['authn_context'], 'authn_auth': ENTITY_ID},
            sign_response=sp_options['sign_response'],
            sign_assertion=sp_options['sign_assertion'],
            encrypt_assertion=sp_options['encrypt_assertion'],
            encrypt_assertion_self_contained=True,
            # None: the configured rsa-sha256 / sha256.
            sign_alg=sp_options.get('sign_alg'),
            digest_alg=sp_options.get('digest_alg'),
        )
        form = server.apply_binding(BINDING_HTTP_POST, str(response), acs, params.get('RelayState', ''), response=True)
        return self.answer(200, 'text/html; charset=utf-8', form['data'])


if __name__ == '__main__':
    # One request at a time: the cached servers are set per request (data_encryption).
    HTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
