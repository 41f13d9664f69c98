"""A Kubernetes API emulator for Weft's controller tests: kmock's KubernetesEmulator, adapted so a
kube-rs client and kube-runtime watches work against it.

kmock keeps objects in memory and serves list/get/watch. What it lacks, and this adds:
  * metadata an API server stamps: uid, resourceVersion (one global counter), generation (bumped
    on spec changes), creationTimestamp, namespace from the URL;
  * PATCH by content type: JSON merge patch (RFC 7386, lists replaced, null deletes), strategic
    merge (treated as merge), JSON patch (RFC 6902) and server-side apply (as merge, creating);
  * PUT (replace);
  * optimistic concurrency: a write carrying metadata.resourceVersion that is not current gets
    409 Conflict (leases and finalizer patches rely on it);
  * the status subresource: writes to /status change only status, writes to the object ignore
    status (for weft.dev resources, which declare the subresource);
  * deletion: finalizers hold an object with deletionTimestamp set; it goes when they are
    removed; then objects it owns (ownerReferences) are deleted as the garbage collector would;
  * lists carry the current resourceVersion.
Selectors are still ignored. Test-only: plain HTTP on 127.0.0.1, no auth.

Usage: python weft_kmock.py  -> prints "PORT <n>" and serves until stdin closes.
"""

import asyncio
import copy
import datetime
import json
import sys
import uuid

import aiohttp.web
import jsonpatch
import kmock

RESOURCES = [
    'weft.dev/v1alpha1/virtualnetworks',
    'weft.dev/v1alpha1/interclusterlinks',
    'k8s.cni.cncf.io/v1/network-attachment-definitions',
    'v1/pods',
    'v1/namespaces',
    'v1/events',
    'coordination.k8s.io/v1/leases',
    'events.k8s.io/v1/events',
]
STATUS_SUBRESOURCE_GROUPS = {'weft.dev'}


def now():
    return datetime.datetime.now(tz=datetime.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')


def merge(target, patch):
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge(out.get(k), v)
    return out


def status(code, reason, message):
    return aiohttp.web.json_response({
        'apiVersion': 'v1', 'kind': 'Status', 'metadata': {}, 'status': 'Failure',
        'code': code, 'reason': reason, 'message': message,
    }, status=code)


class WeftEmulator(kmock.KubernetesEmulator):
    rv: int = 0

    def _next_rv(self):
        self.rv += 1
        return str(self.rv)

    def _find(self, resource, namespace, name):
        key = (resource, namespace, name)
        if key in self._objects and not self._objects[key].deleted:
            return key, self._objects[key].raw
        return key, None

    async def _emit(self, resource, type_, raw):
        await self._buses[resource].put({'type': type_, 'object': copy.deepcopy(raw)})

    def _stamp(self, request, new, old):
        meta = new.setdefault('metadata', {})
        if request.namespace:
            meta['namespace'] = request.namespace
        if old is None:
            meta['uid'] = str(uuid.uuid4())
            meta['creationTimestamp'] = now()
            meta['generation'] = 1
            meta.pop('deletionTimestamp', None)
        else:
            om = old.get('metadata', {})
            for k in ('uid', 'creationTimestamp', 'deletionTimestamp', 'name', 'namespace'):
                if k in om:
                    meta[k] = om[k]
                else:
                    meta.pop(k, None) if k == 'deletionTimestamp' else None
            gen = om.get('generation', 1)
            if new.get('spec') != old.get('spec'):
                gen += 1
            meta['generation'] = gen
            for k in ('apiVersion', 'kind'):
                if k not in new and k in old:
                    new[k] = old[k]
        meta['resourceVersion'] = self._next_rv()
        return new

    def _subresource_rules(self, request, new, old):
        """Status subresource semantics for resources that declare it."""
        if old is None or request.resource.group not in STATUS_SUBRESOURCE_GROUPS:
            return new
        if request.subresource == 'status':
            out = copy.deepcopy(old)
            if 'status' in new:
                out['status'] = new['status']
            else:
                out.pop('status', None)
            if 'resourceVersion' in new.get('metadata', {}):
                out['metadata']['resourceVersion'] = new['metadata']['resourceVersion']
            return out
        if 'status' in old:
            new['status'] = old['status']
        else:
            new.pop('status', None)
        return new

    async def _store(self, request, key, new, old):
        """Writes `new` (already stamped) and finishes a deletion whose finalizers are gone."""
        if old is None:
            self._objects[key] = new
            await self._emit(request.resource, 'ADDED', new)
        else:
            self._objects[key].create(new)
            await self._emit(request.resource, 'MODIFIED', new)
        meta = new.get('metadata', {})
        if meta.get('deletionTimestamp') and not meta.get('finalizers'):
            await self._remove(request.resource, key, new)

    async def _remove(self, resource, key, raw):
        self._objects[key].delete()
        await self._emit(resource, 'DELETED', raw)
        uid = raw.get('metadata', {}).get('uid')
        if not uid:
            return
        # Background cascading deletion of dependents, as the garbage collector does.
        for (res, ns, name), obj in list(self._objects.items()):
            if obj.deleted:
                continue
            refs = obj.raw.get('metadata', {}).get('ownerReferences') or []
            if any(r.get('uid') == uid for r in refs):
                await self._delete_obj(res, (res, ns, name), obj.raw)

    async def _delete_obj(self, resource, key, raw):
        meta = raw.get('metadata', {})
        if meta.get('finalizers'):
            if not meta.get('deletionTimestamp'):
                new = copy.deepcopy(raw)
                new['metadata']['deletionTimestamp'] = now()
                new['metadata']['resourceVersion'] = self._next_rv()
                self._objects[key].create(new)
                await self._emit(resource, 'MODIFIED', new)
                return new
            return raw
        await self._remove(resource, key, raw)
        return raw

    async def _handle(self, request):
        if request.resource is None:
            return await super()._handle(request)
        method = str(request.method.value).upper()
        async with self._lock:
            if method == 'POST' and request.name is None:
                return await self._create(request)
            if request.name is not None and method in ('PATCH', 'PUT'):
                return await self._write(request, method)
            if request.name is not None and method == 'GET' and request.params.get('watch') != 'true':
                # kmock's 404 reason is not the API server's "NotFound", which clients test for.
                _, obj = self._find(request.resource, request.namespace, request.name)
                if obj is None:
                    return status(404, 'NotFound', f'{request.resource.plural} "{request.name}" not found')
                if request.subresource not in (None, 'status'):
                    return status(404, 'NotFound', f'subresource {request.subresource} not served')
                return aiohttp.web.json_response(obj)
            if request.name is not None and method == 'DELETE':
                key, old = self._find(request.resource, request.namespace, request.name)
                if old is None:
                    return status(404, 'NotFound', f'{request.resource.plural} "{request.name}" not found')
                return aiohttp.web.json_response(await self._delete_obj(request.resource, key, old))
        return await super()._handle(request)

    async def _create(self, request):
        body = request.data if isinstance(request.data, dict) else {}
        meta = body.setdefault('metadata', {})
        if not meta.get('name') and meta.get('generateName'):
            meta['name'] = meta['generateName'] + uuid.uuid4().hex[:5]
        key, old = self._find(request.resource, request.namespace or meta.get('namespace'), meta.get('name'))
        if old is not None:
            return status(409, 'AlreadyExists', f'{request.resource.plural} "{meta.get("name")}" already exists')
        new = self._stamp(request, copy.deepcopy(body), None)
        await self._store(request, key, new, None)
        return aiohttp.web.json_response(new, status=201)

    async def _write(self, request, method):
        key, old = self._find(request.resource, request.namespace, request.name)
        ctype = request.headers.get('Content-Type', '').split(';')[0].strip()
        body = request.data
        if body is None and request.text:
            try:
                body = json.loads(request.text)
            except ValueError:
                return status(400, 'BadRequest', 'body is not JSON')
        if old is None and not (method == 'PATCH' and ctype == 'application/apply-patch+yaml'):
            return status(404, 'NotFound', f'{request.resource.plural} "{request.name}" not found')
        if method == 'PUT':
            new = copy.deepcopy(body)
        elif ctype == 'application/json-patch+json':
            try:
                new = jsonpatch.apply_patch(old, body)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
                return status(422, 'Invalid', f'json patch: {e}')
        else:
            new = merge(old or {}, body)
        want_rv = (body or {}).get('metadata', {}).get('resourceVersion') if isinstance(body, dict) else None
        if old is not None and want_rv and want_rv != old.get('metadata', {}).get('resourceVersion'):
            return status(409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again')
        new = self._subresource_rules(request, new, old)
        new = self._stamp(request, new, old)
        await self._store(request, key, new, old)
        return aiohttp.web.json_response(new)

    async def _serve_list(self, request):
        result = await super()._serve_list(request)
        result['metadata'] = {'resourceVersion': str(self.rv)}
        result['apiVersion'] = 'v1'
        result['kind'] = 'List'
        return result


async def main():
    async with WeftEmulator() as k8s, kmock.Server(k8s) as server:
        for r in RESOURCES:
            k8s.resources[r] = {}
        print(f'PORT {server.port}', flush=True)
        loop = asyncio.get_running_loop()
        # Serve until the test closes our stdin (or dies).
        await loop.run_in_executor(None, sys.stdin.read)


if __name__ == '__main__':
    asyncio.run(main())
