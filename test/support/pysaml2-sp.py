#!/usr/bin/env python3
"""A SAML service provider built on pysaml2 (Debian python3-pysaml2), for Brána's interop tests of
its SAML IdP for SePs. It shares no code with Brána or node-saml. One command per step, each printing
JSON on standard output:

  pysaml2-sp.py <work dir> metadata
      the SP's metadata (signing and encryption certificates, an HTTP-POST ACS)
  pysaml2-sp.py <work dir> request <redirect|post> <relay state>
      a signed AuthnRequest (RSA-SHA256) for Brána as pysaml2 sends it, with eIDAS SPType and
      RequestedAttributes and a minimum LoA: {"id", "url"} or {"id", "action", "fields"}
  pysaml2-sp.py <work dir> response <request id> <SAMLResponse file>
      the Response checked and its Assertion decrypted by pysaml2: {"name_id", "name_id_format",
      "authn_context", "attributes", "issuer", "session_index"}; a refusal exits 1 with the reason on
      standard error
  pysaml2-sp.py <work dir> logout-request <name id> <session index> <relay state>
      a LogoutRequest for Brána on HTTP-Redirect, signed in the query (RSA-SHA256): {"id", "url"}
  pysaml2-sp.py <work dir> logout-received <url>
      a LogoutRequest Brána sent to the SP's SingleLogoutService (HTTP-Redirect): its query signature
      verified against Brána's metadata, then read by pysaml2: {"name_id", "session_indexes", "issuer"}
  pysaml2-sp.py <work dir> logout-response <url>
      Brána's LogoutResponse at the SP's SingleLogoutService (HTTP-Redirect), signature verified:
      {"status", "in_response_to"}

The work dir holds sp.key and sp.crt (the SP's key, for signing and decryption), idp.xml (Brána's
IdP metadata) and settings.json ({"entity_id", "acs"}).
"""
import html
import json
import os
import re
import sys
from urllib.parse import parse_qsl, urlsplit

from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
from saml2.client import Saml2Client
from saml2.config import SPConfig
from saml2.metadata import entity_descriptor
from saml2.saml import NAMEID_FORMAT_PERSISTENT, NameID
from saml2.sigver import verify_redirect_signature
from saml2.samlp import RequestedAuthnContext
from saml2.saml import AuthnContextClassRef
from saml2.xmldsig import DIGEST_SHA256, SIG_RSA_SHA256

WORK = sys.argv[1]
COMMAND = sys.argv[2]
EIDAS = 'http://eidas.europa.eu/attributes/naturalperson/'
URI = 'urn:oasis:names:tc:SAML:2.0:attrname-format:uri'


def client():
    settings = json.load(open(os.path.join(WORK, 'settings.json')))
    key = os.path.join(WORK, 'sp.key')
    cert = os.path.join(WORK, 'sp.crt')
    config = SPConfig()
    config.load({
        'entityid': settings['entity_id'],
        'xmlsec_binary': '/usr/bin/xmlsec1',
        'key_file': key,
        'cert_file': cert,
        'encryption_keypairs': [{'key_file': key, 'cert_file': cert}],
        'metadata': {'local': [os.path.join(WORK, 'idp.xml')]},
        'signing_algorithm': SIG_RSA_SHA256,
        'digest_algorithm': DIGEST_SHA256,
        'allow_unknown_attributes': True,
        'service': {
            'sp': {
                'endpoints': {
                    'assertion_consumer_service': [(settings['acs'], BINDING_HTTP_POST)],
                    'single_logout_service': [(settings['acs'].replace('/acs', '/slo'), BINDING_HTTP_REDIRECT)],
                },
                'authn_requests_signed': True,
                'want_response_signed': True,
                'want_assertions_signed': True,
                'want_assertions_or_response_signed': True,
                'name_id_format': NAMEID_FORMAT_PERSISTENT,
                'allow_unsolicited': False,
                'sp_type': 'public',
                'sp_type_in_metadata': False,
                'requested_attributes': [
                    {'name': EIDAS + 'CurrentGivenName', 'name_format': URI, 'friendly_name': 'CurrentGivenName', 'required': True},
                    {'name': EIDAS + 'CurrentFamilyName', 'name_format': URI, 'friendly_name': 'CurrentFamilyName', 'required': True},
                    {'name': EIDAS + 'DateOfBirth', 'name_format': URI, 'friendly_name': 'DateOfBirth', 'required': False},
                ],
            },
        },
    })
    return Saml2Client(config)


def idp_entity_id(sp):
    return next(iter(sp.metadata.identity_providers()))


def redirect_message(sp, url):
    """The query of a Redirect-binding message, its signature verified against Brána's metadata."""
    query = dict(parse_qsl(urlsplit(url).query))
    certs = sp.metadata.certs(idp_entity_id(sp), 'idpsso', 'signing')
    if not any(verify_redirect_signature(query, sp.sec.sec_backend, cert=cert) for cert in certs):
        sys.stderr.write('the query signature does not verify\n')
        sys.exit(1)
    return query


if COMMAND == 'metadata':
    sp = client()
    print(json.dumps({'xml': str(entity_descriptor(sp.config))}))
elif COMMAND == 'request':
    binding = BINDING_HTTP_REDIRECT if sys.argv[3] == 'redirect' else BINDING_HTTP_POST
    sp = client()
    context = RequestedAuthnContext(authn_context_class_ref=[AuthnContextClassRef(text='http://eidas.europa.eu/LoA/substantial')], comparison='minimum')
    request_id, info = sp.prepare_for_authenticate(
        entityid=idp_entity_id(sp), relay_state=sys.argv[4], binding=binding, sign=True, sigalg=SIG_RSA_SHA256, digest_alg=DIGEST_SHA256,
        requested_authn_context=context,
    )
    if binding == BINDING_HTTP_REDIRECT:
        print(json.dumps({'id': request_id, 'url': dict(info['headers'])['Location']}))
    else:
        page = info['data']
        action = html.unescape(re.search(r'action="([^"]+)"', page).group(1))
        fields = {name: html.unescape(value) for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page)}
        print(json.dumps({'id': request_id, 'action': action, 'fields': fields}))
elif COMMAND == 'response':
    sp = client()
    request_id = sys.argv[3]
    saml_response = open(sys.argv[4]).read()
    try:
        response = sp.parse_authn_request_response(saml_response, BINDING_HTTP_POST, outstanding={request_id: '/'})
    except Exception as err:  # every refusal is the test's answer, not a crash
        sys.stderr.write('%s: %s\n' % (type(err).__name__, err))
        sys.exit(1)
    if response is None:
        sys.stderr.write('no response\n')
        sys.exit(1)
    name_id = response.assertion.subject.name_id
    context = response.assertion.authn_statement[0].authn_context.authn_context_class_ref.text
    attributes = {}
    for statement in response.assertion.attribute_statement:
        for attribute in statement.attribute:
            attributes[attribute.name] = [value.text for value in attribute.attribute_value]
    print(json.dumps({
        'session_index': response.assertion.authn_statement[0].session_index,
        'name_id': name_id.text,
        'name_id_format': name_id.format,
        'authn_context': context,
        'attributes': attributes,
        'issuer': response.issuer(),
    }))
elif COMMAND == 'logout-request':
    sp = client()
    idp = idp_entity_id(sp)
    destination = sp.metadata.single_logout_service(idp, BINDING_HTTP_REDIRECT, 'idpsso')[0]['location']
    request_id, request = sp.create_logout_request(
        destination, idp, name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text=sys.argv[3]), session_indexes=[sys.argv[4]], sign=False,
    )
    info = sp.apply_binding(BINDING_HTTP_REDIRECT, str(request), destination, sys.argv[5], sign=True, sigalg=SIG_RSA_SHA256)
    print(json.dumps({'id': request_id, 'url': dict(info['headers'])['Location']}))
elif COMMAND == 'logout-received':
    sp = client()
    query = redirect_message(sp, sys.argv[3])
    request = sp.parse_logout_request(query['SAMLRequest'], BINDING_HTTP_REDIRECT)
    if request is None:
        sys.stderr.write('no logout request\n')
        sys.exit(1)
    message = request.message
    print(json.dumps({
        'name_id': message.name_id.text,
        'session_indexes': [index.text for index in message.session_index],
        'issuer': message.issuer.text,
    }))
elif COMMAND == 'logout-response':
    sp = client()
    query = redirect_message(sp, sys.argv[3])
    response = sp.parse_logout_request_response(query['SAMLResponse'], BINDING_HTTP_REDIRECT)
    if response is None:
        sys.stderr.write('no logout response\n')
        sys.exit(1)
    print(json.dumps({'status': response.response.status.status_code.value, 'in_response_to': response.response.in_response_to}))
else:
    sys.stderr.write('unknown command %s\n' % COMMAND)
    sys.exit(2)
